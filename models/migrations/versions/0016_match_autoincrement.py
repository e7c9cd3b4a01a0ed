"""proposal ids are never given again on SQLite

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05

SQLite gives the next row the largest id in use plus one: a withdrawn proposal (deleted when a
text changes) left its id to the next proposal, and a review desk page still open approved that
other pair with its « Valider ». AUTOINCREMENT never reuses an id. No table points at `match`
by foreign key, so its copy is safe under SQLite's foreign keys. PostgreSQL's sequences never
reuse ids: nothing to do there.
"""
from __future__ import annotations

from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("match", recreate="always",
                              table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
