"""habitant relais review: validation status of residents and needs

Profiles and needs recorded by a habitant-relais wait for a social worker before they enter
matching. Existing rows were recorded by staff: they are validated (the server default).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


TABLES = ('resident', 'need')
NEED_FK = 'fk_need_validated_by_id_app_user'  # resident has none: app_user already points at it


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('validation_status', sa.String(length=16),
                                          server_default='validated', nullable=False))
            batch_op.add_column(sa.Column('validated_by_id', sa.Integer(), nullable=True))
            batch_op.add_column(sa.Column('validated_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                          nullable=True))
            batch_op.add_column(sa.Column('validation_note',
                                          sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
            if table == 'need':
                batch_op.create_foreign_key(NEED_FK, 'app_user', ['validated_by_id'], ['id'])


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table == 'need':
                batch_op.drop_constraint(NEED_FK, type_='foreignkey')
            for column in ('validation_note', 'validated_at', 'validated_by_id', 'validation_status'):
                batch_op.drop_column(column)
