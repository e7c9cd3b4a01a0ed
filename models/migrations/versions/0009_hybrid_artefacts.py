"""hybrid ranker artefacts, one per current declaration and per need

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows get their artefacts on the next start (MatchingService.load_or_rebuild builds
    # the missing ones from the stored texts) or with scripts/reindex.py.
    op.create_table(
        'hybridartefact',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('collection', sa.String(length=16), nullable=False),
        sa.Column('doc_id', sa.Integer(), nullable=False),
        sa.Column('encoders', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('artefact', sa.LargeBinary(), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('collection', 'doc_id'),
    )


def downgrade() -> None:
    op.drop_table('hybridartefact')
