"""indexes for the neighbourhood filter and for the journal's actions

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07

On a 10,000-resident copy, a review helper found the review desk's neighbourhood filter and
`GET /residents/erased?since=` (action = … and at >= …) scanning whole tables: `resident` by
`territory_id`, `auditevent` (which grows with every reading journaled) by `action`. The
journal page's filter by action prefix (a LIKE) still scans.
"""
from __future__ import annotations

from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_resident_territory_id', 'resident', ['territory_id'], unique=False)
    op.create_index('ix_auditevent_action_at', 'auditevent', ['action', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_auditevent_action_at', table_name='auditevent')
    op.drop_index('ix_resident_territory_id', table_name='resident')
