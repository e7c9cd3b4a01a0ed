"""a withdrawn proposal's id is kept, so a partner tool can drop its copy

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06

A proposal withdrawn before its review or answer is deleted from `match`, and `GET /proposals`
could not tell a tool keeping copies that it went: the tool kept it as waiting. Its id, the
person's centre and the moment are written here, listed by `GET /proposals/withdrawn?since=`.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'withdrawn_proposal',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=True),
        sa.Column('withdrawn_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_withdrawn_proposal_organisation_id'), 'withdrawn_proposal', ['organisation_id'],
                    unique=False)
    op.create_index(op.f('ix_withdrawn_proposal_withdrawn_at'), 'withdrawn_proposal', ['withdrawn_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_withdrawn_proposal_withdrawn_at'), table_name='withdrawn_proposal')
    op.drop_index(op.f('ix_withdrawn_proposal_organisation_id'), table_name='withdrawn_proposal')
    op.drop_table('withdrawn_proposal')
