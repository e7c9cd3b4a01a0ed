"""notifications keep their msgid and values, to be shown in the reader's language

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05

A notification was stored as French text only: a resident reading Relais in English got « Nouvelle
proposition pour vous » in French. The msgid and its values are kept beside the text (which the
email digest and older rows still use).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("message", sa.String(length=300), nullable=False, server_default=""))
        batch.add_column(sa.Column("message_values", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.drop_column("message_values")
        batch.drop_column("message")
