"""Migrations and model-level rules."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select as sa_select
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel, select

from models import AppendOnlyError, AuditEvent, Consent, Database, utcnow


def test_migrations_build_exactly_the_models(migrated: Database) -> None:
    """`alembic upgrade head` gives the schema the models describe: no missing migration."""
    with migrated.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_upgrade_is_idempotent(migrated: Database) -> None:
    migrated.upgrade()  # a second run finds nothing to do


def test_audit_events_are_append_only(migrated: Database) -> None:
    with migrated.session() as session:
        session.add(AuditEvent(action="export", object_type="resident", object_id=1))
        session.commit()
        event = session.exec(select(AuditEvent)).one()
        event.action = "nothing happened"
        session.add(event)
        with pytest.raises(AppendOnlyError):
            session.commit()
    with migrated.session() as session:
        event = session.exec(select(AuditEvent)).one()
        assert event.action == "export"
        session.delete(event)
        with pytest.raises(AppendOnlyError):
            session.commit()
    with Session(migrated.engine) as session:
        assert len(session.exec(select(AuditEvent)).all()) == 1


BEFORE = {"source": "web", "changes": {"languages": {"before": ["fr"], "after": ["fr", "ar"]}}}
SCRUBBED = {"source": "web", "changed": ["languages"]}


@pytest.mark.parametrize("change", [
    {"action": "nothing happened"},
    {"object_id": 2},
    {"details": {"source": "web", "changes": {"languages": {"before": ["fr"], "after": ["fr"]}}}},
    {"details": {"source": "api", "changed": ["languages"]}},  # another key changed with the scrub
    {"details": {"source": "web", "changed": "languages"}},
    {"details": SCRUBBED, "actor_id": None, "action": "nothing happened"},
])
def test_the_database_itself_refuses_to_change_the_journal(migrated: Database,
                                                           change: dict[str, object]) -> None:
    """Past the ORM (a bulk update, raw SQL, another tool): the triggers of migration 0019 let an
    erasure's scrub through (`_scrub_changes`: the values of `changes` replaced by the names of
    the fields that `changed`), and nothing else."""
    table = SQLModel.metadata.tables["auditevent"]
    with migrated.session() as session:
        session.add(AuditEvent(action="declaration.update", object_type="resident", object_id=1,
                               details=BEFORE))
        session.commit()
    for refused in (table.update().values(**change), table.delete()):
        with migrated.engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(refused)
    with migrated.engine.begin() as conn:
        conn.execute(table.update().values(details=SCRUBBED))  # an erasure's scrub
    with migrated.engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
        conn.execute(table.update().values(details={"source": "web", "changed": []}))  # scrubbed: done
    with migrated.engine.connect() as conn:
        assert conn.execute(sa_select(table.c.action, table.c.object_id, table.c.details)).all() == [
            ("declaration.update", 1, SCRUBBED)]


def test_the_database_refuses_to_empty_the_journal_at_once(migrated: Database) -> None:
    if migrated.engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    with migrated.engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
        conn.execute(text("TRUNCATE auditevent"))


@pytest.mark.parametrize(("given", "expires", "withdrawn", "valid"), [
    (-10, 300, False, True),
    (-10, None, False, True),
    (-400, -35, False, False),  # expired
    (-10, 300, True, False),  # withdrawn
    (5, 300, False, False),  # not given yet
])
def test_consent_validity(given: int, expires: int | None, withdrawn: bool, valid: bool) -> None:
    today = date(2026, 11, 21)
    consent = Consent(resident_id=1, given_on=today + timedelta(days=given),
                      expires_on=today + timedelta(days=expires) if expires is not None else None,
                      withdrawn_at=utcnow() if withdrawn else None, scope="matching",
                      method="paper_signed", recorded_by_id=1)
    assert consent.is_valid(today) is valid


def test_upgrade_keeps_existing_rows(config: object, database_url: str, tmp_path: object) -> None:
    """Migrations run on a database that already holds data (downgrade to 0001, fill, upgrade)."""
    from alembic import command

    database = Database(database_url)
    command.downgrade(database.alembic_config(), "0001")
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO territory (name, commune, created_at) "
                          "VALUES ('Les Tilleuls', 'Saint-Aubin', '2026-01-01')"))
        conn.execute(text("INSERT INTO organisation (name, kind, description, created_at) "
                          "VALUES ('Asso', 'association', '', '2026-01-01')"))
        conn.execute(text("INSERT INTO app_user (display_name, role, organisation_id, is_active, "
                          "created_at) VALUES ('m', 'association_member', 1, true, '2026-01-01')"))
        conn.execute(text("INSERT INTO need (organisation_id, kind, title, description, when_text, "
                          "where_text, languages, status, created_by_id, created_at, updated_at) "
                          "VALUES (1, 'skill', 'Couture', 'Atelier', '', '', '[]', 'open', 1, "
                          "'2026-01-01', '2026-01-01')"))
    database.upgrade()
    with database.session() as session:
        from models import Need, Territory

        need = session.exec(select(Need)).one()
        assert need.title == "Couture" and need.availability == []
        assert session.exec(select(Territory)).one().coordinates is None
    database.dispose()


def test_sqlite_overwrites_what_is_deleted(migrated: Database) -> None:
    """Erased text must not stay in the file's free pages (and in the backups copied from it).
    Debian's SQLite defaults to it; the engine asks for it wherever it runs."""
    if migrated.engine.dialect.name != "sqlite":
        pytest.skip("a SQLite setting")
    with migrated.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
