"""indexes for pages whose reads grew with the whole database

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

A resident's history and export read the audit events about them (a scan of every event before:
61 ms at 680,000 events, growing with every page view an association makes); what waits for
validation, what a habitant-relais recorded and a centre's residents by name scanned every
resident.
"""
from __future__ import annotations

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_auditevent_object_type_object_id', 'auditevent', ['object_type', 'object_id'])
    op.create_index('ix_auditevent_actor_id', 'auditevent', ['actor_id'])
    op.create_index('ix_resident_organisation_id_first_name', 'resident', ['organisation_id', 'first_name'])
    op.create_index('ix_resident_validation_status_organisation_id', 'resident',
                    ['validation_status', 'organisation_id'])
    op.create_index('ix_resident_created_by_id', 'resident', ['created_by_id'])


def downgrade() -> None:
    op.drop_index('ix_resident_created_by_id', table_name='resident')
    op.drop_index('ix_resident_validation_status_organisation_id', table_name='resident')
    op.drop_index('ix_resident_organisation_id_first_name', table_name='resident')
    op.drop_index('ix_auditevent_actor_id', table_name='auditevent')
    op.drop_index('ix_auditevent_object_type_object_id', table_name='auditevent')
