"""residents' first names folded for search

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04

The worker's search by first name compared with LIKE: SQLite folds ASCII letters only, so
"élodie" did not find "Élodie", and neither engine ignores accents ("Elodie"). Each resident now
keeps the folded name (lower case, no accents) beside the name as written; existing rows are
folded here, with the same rule as models.tables.fold (copied: a migration stays as it was written).
"""
from __future__ import annotations

import unicodedata

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BATCH = 5000


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("œ", "oe")


def upgrade() -> None:
    op.add_column('resident', sa.Column('name_key', sqlmodel.sql.sqltypes.AutoString(length=60),
                                        nullable=True))
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(sa.text(
            "SELECT id, first_name FROM resident WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last, "n": BATCH}).all()
        if not rows:
            break
        bind.execute(sa.text("UPDATE resident SET name_key = :key WHERE id = :id"),
                     [{"id": i, "key": _fold(name or "")} for i, name in rows])
        last = rows[-1][0]


def downgrade() -> None:
    # In place on both engines (SQLite >= 3.35): a batch copy of the table would have to drop it,
    # which the foreign keys of every table pointing at residents refuse.
    op.execute("ALTER TABLE resident DROP COLUMN name_key")
