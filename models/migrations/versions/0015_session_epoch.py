"""sessions end when a password or access code is replaced, or an account deactivated; temporary
passwords are replaced at the first login

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05

A session kept only the user id: a password reset, a change or a deactivation left every session
already open (and, once reactivated, every old one) in place. Sessions now carry `session_epoch`,
raised by those changes. `must_change_password` marks a temporary password given by an
administrator.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table copy: SQLite would drop app_user under its foreign keys).
    op.add_column('app_user', sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False))
    op.add_column('app_user', sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(),
                                        nullable=False))
    # Deactivation now revokes an account's tokens: those deactivated before lose theirs too, so
    # that a reactivation brings none back.
    op.execute("UPDATE api_token SET revoked_at = CURRENT_TIMESTAMP WHERE revoked_at IS NULL "
               "AND user_id IN (SELECT id FROM app_user WHERE NOT is_active)")


def downgrade() -> None:
    # In place on both engines (SQLite >= 3.35), as 0012: a batch copy would drop app_user.
    op.execute("ALTER TABLE app_user DROP COLUMN must_change_password")
    op.execute("ALTER TABLE app_user DROP COLUMN session_epoch")
