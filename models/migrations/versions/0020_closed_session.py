"""sessions ended by a logout are refused, not only forgotten by the browser that logged out

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06

A session cookie is signed and valid until it expires (8 hours): « Se déconnecter » only made the
browser forget it, and a copy kept elsewhere was still logged in. Each login now carries a random
id; a logout writes it here, and a request with it is anonymous. Rows go once the cookie would
have expired anyway.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'closed_session',
        sa.Column('sid', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('sid'),
    )
    op.create_index(op.f('ix_closed_session_expires_at'), 'closed_session', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_closed_session_expires_at'), table_name='closed_session')
    op.drop_table('closed_session')
