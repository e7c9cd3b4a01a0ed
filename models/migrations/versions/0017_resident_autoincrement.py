"""a resident's id is never given again on SQLite

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05

SQLite gives the next row the largest id in use plus one: a profile created after the newest
one was erased took its id, and with it whatever still named that id (a link kept from the erased
person's page, the journal's entries about them). AUTOINCREMENT never reuses an id. Tables point
at `resident` by foreign key: env.py runs SQLite migrations with the checks off and checks every
reference before the commit. PostgreSQL's sequences never reuse ids: nothing to do there.
"""
from __future__ import annotations

from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def _recreate(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    with op.batch_alter_table("resident", recreate="always",
                              table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
