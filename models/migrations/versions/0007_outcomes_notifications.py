"""outcomes notifications

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22

Written by hand: the number of people a need asks for, the resident's contact channel, the outcome
of an accepted proposal, and in-app notifications (with the email digest's mark).
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('need', schema=None) as batch_op:
        batch_op.add_column(sa.Column('people_wanted', sa.Integer(), nullable=True))

    with op.batch_alter_table('resident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_channel', sa.String(length=16), server_default='worker',
                                      nullable=False))
        batch_op.add_column(sa.Column('contact_value', sqlmodel.sql.sqltypes.AutoString(length=254),
                                      nullable=True))

    with op.batch_alter_table('match', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('outcome_note', sqlmodel.sql.sqltypes.AutoString(length=200),
                                      nullable=True))
        batch_op.add_column(sa.Column('outcome_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('outcome_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_match_outcome_by_id_app_user', 'app_user', ['outcome_by_id'], ['id'])

    op.create_table(
        'notification',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('text', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('link', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('read_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('emailed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['app_user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_created_at'))
        batch_op.drop_index(batch_op.f('ix_notification_user_id'))
    op.drop_table('notification')

    with op.batch_alter_table('match', schema=None) as batch_op:
        batch_op.drop_constraint('fk_match_outcome_by_id_app_user', type_='foreignkey')
        batch_op.drop_column('outcome_by_id')
        batch_op.drop_column('outcome_at')
        batch_op.drop_column('outcome_note')
        batch_op.drop_column('outcome')

    with op.batch_alter_table('resident', schema=None) as batch_op:
        batch_op.drop_column('contact_value')
        batch_op.drop_column('contact_channel')

    with op.batch_alter_table('need', schema=None) as batch_op:
        batch_op.drop_column('people_wanted')
