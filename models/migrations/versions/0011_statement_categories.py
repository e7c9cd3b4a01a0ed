"""each statement's skill category, stored when written; proposals' dates indexed

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

The impact dashboard read every current statement and categorised it in Python on each view
(196 s at 100,000 residents, past gunicorn's timeout); it now counts the stored categories in SQL.
Existing statements are categorised here, with the lexicon of web.services.categories. Its
month tables are counted in SQL from an index holding each proposal's state and dates (3.4 s ->
0.43 s for every neighbourhood at 200,000 proposals).
"""
from __future__ import annotations

import json

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    from web.services.categories import categorise

    op.add_column('skillstatement', sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=16),
                                              nullable=True))
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(sa.text(
            "SELECT id, text, lemmas FROM skillstatement WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last, "n": BATCH}).all()
        if not rows:
            break
        bind.execute(sa.text("UPDATE skillstatement SET category = :category WHERE id = :id"), [
            {"id": i, "category": categorise(text, json.loads(lemmas) if isinstance(lemmas, str)
                                             else lemmas or ())}
            for i, text, lemmas in rows])
        last = rows[-1][0]
    with op.batch_alter_table('skillstatement') as batch:
        batch.alter_column('category', existing_type=sqlmodel.sql.sqltypes.AutoString(length=16),
                           nullable=False)
    op.create_index('ix_skillstatement_resident_id_category', 'skillstatement',
                    ['resident_id', 'negated', 'declaration_id', 'category'])
    op.create_index('ix_match_resident_id_dates', 'match', ['resident_id', 'status', 'created_at',
                                                            'reviewed_at', 'answered_at', 'outcome',
                                                            'outcome_at'])


def downgrade() -> None:
    op.drop_index('ix_match_resident_id_dates', table_name='match')
    op.drop_index('ix_skillstatement_resident_id_category', table_name='skillstatement')
    with op.batch_alter_table('skillstatement') as batch:
        batch.drop_column('category')
