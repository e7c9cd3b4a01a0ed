"""the journal refuses updates and deletes in the database itself, not only through the ORM

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

Audit events were append-only through SQLAlchemy's ORM events (models/tables.py): a bulk
`update(AuditEvent)`, a raw SQL statement or another tool on the database went past them. Triggers
now refuse DELETE on `auditevent` (and TRUNCATE on PostgreSQL) and every UPDATE but an erasure's
scrub (web.services.privacy._scrub_changes): the before/after values of an event's `changes`
replaced by the list of the fields that `changed`, every other column and key as it was. They
guard against the application's own mistakes and anything that reaches the database through it,
not against the database's owner, who can drop a trigger. On SQLite, a later batch alteration of
`auditevent` (which copies the table) drops them: such a migration must call `create()` again.
"""
from __future__ import annotations

from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

MESSAGE = "audit events are append-only"
_SAME = ("id", "at", "actor_id", "action", "object_type", "object_id")

_POSTGRESQL = f"""
CREATE OR REPLACE FUNCTION relais_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE'
     AND ({", ".join(f"NEW.{c}" for c in _SAME)}) IS NOT DISTINCT FROM ({", ".join(f"OLD.{c}" for c in _SAME)})
     AND (OLD.details::jsonb -> 'changes') IS NOT NULL
     AND jsonb_typeof(NEW.details::jsonb -> 'changed') = 'array'
     AND (NEW.details::jsonb - 'changed') = (OLD.details::jsonb - 'changes') THEN
    RETURN NEW;  -- an erasure's scrub
  END IF;
  RAISE EXCEPTION '{MESSAGE}';
END $$
"""

_SQLITE_NOT_A_SCRUB = " OR ".join([
    *(f"NEW.{c} IS NOT OLD.{c}" for c in _SAME),
    "json_extract(OLD.details, '$.changes') IS NULL",
    "json_type(NEW.details, '$.changed') IS NOT 'array'",
    "json_remove(NEW.details, '$.changed') IS NOT json_remove(OLD.details, '$.changes')",
])


def create() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRESQL)
        op.execute("CREATE TRIGGER auditevent_append_only BEFORE UPDATE OR DELETE ON auditevent "
                   "FOR EACH ROW EXECUTE FUNCTION relais_append_only()")
        op.execute("CREATE TRIGGER auditevent_no_truncate BEFORE TRUNCATE ON auditevent "
                   "FOR EACH STATEMENT EXECUTE FUNCTION relais_append_only()")
    else:
        op.execute(f"CREATE TRIGGER auditevent_no_update BEFORE UPDATE ON auditevent "
                   f"WHEN {_SQLITE_NOT_A_SCRUB} BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
        op.execute(f"CREATE TRIGGER auditevent_no_delete BEFORE DELETE ON auditevent "
                   f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def upgrade() -> None:
    create()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS auditevent_no_truncate ON auditevent")
        op.execute("DROP TRIGGER IF EXISTS auditevent_append_only ON auditevent")
        op.execute("DROP FUNCTION IF EXISTS relais_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS auditevent_no_delete")
        op.execute("DROP TRIGGER IF EXISTS auditevent_no_update")
