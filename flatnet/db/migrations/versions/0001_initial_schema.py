"""Initial schema: every table of flatnet.db.models.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 02:29:51.555322
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('counters',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('host_state',
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('network_id', sa.Integer(), nullable=False),
    sa.Column('component', sa.String(length=32), nullable=False),
    sa.Column('applied_generation', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('host', 'network_id', 'component')
    )
    op.create_table('instances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('launched_on', sa.String(length=255), nullable=True),
    sa.Column('project_id', sa.String(length=255), nullable=True),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('key_name', sa.String(length=255), nullable=True),
    sa.Column('key_data', sa.Text(), nullable=True),
    sa.Column('user_data', sa.Text(), nullable=True),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('image_ref', sa.String(length=255), nullable=True),
    sa.Column('launch_index', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hostname', 'deleted', name='uniq_instances0hostname0deleted'),
    sa.UniqueConstraint('uuid')
    )
    op.create_table('lease_journal_offsets',
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('inode', sa.BigInteger(), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('path')
    )
    op.create_table('networks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('label', sa.String(length=255), nullable=False),
    sa.Column('injected', sa.Boolean(), nullable=False),
    sa.Column('cidr', sa.String(length=43), nullable=False),
    sa.Column('cidr_v6', sa.String(length=43), nullable=True),
    sa.Column('multi_host', sa.Boolean(), nullable=False),
    sa.Column('gateway_v6', sa.String(length=39), nullable=True),
    sa.Column('netmask_v6', sa.String(length=39), nullable=True),
    sa.Column('netmask', sa.String(length=39), nullable=True),
    sa.Column('gateway', sa.String(length=39), nullable=True),
    sa.Column('broadcast', sa.String(length=39), nullable=True),
    sa.Column('dns1', sa.String(length=39), nullable=True),
    sa.Column('dns2', sa.String(length=39), nullable=True),
    sa.Column('bridge', sa.String(length=255), nullable=False),
    sa.Column('bridge_interface', sa.String(length=255), nullable=True),
    sa.Column('vlan', sa.Integer(), nullable=True),
    sa.Column('dhcp_start', sa.String(length=39), nullable=True),
    sa.Column('rxtx_base', sa.Integer(), nullable=True),
    sa.Column('project_id', sa.String(length=255), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('mtu', sa.Integer(), nullable=True),
    sa.Column('dhcp_server', sa.String(length=39), nullable=True),
    sa.Column('enable_dhcp', sa.Boolean(), nullable=False),
    sa.Column('share_address', sa.Boolean(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('bridge', 'deleted', name='uniq_networks0bridge0deleted'),
    sa.UniqueConstraint('cidr', 'deleted', name='uniq_networks0cidr'),
    sa.UniqueConstraint('label', 'deleted', name='uniq_networks0label'),
    sa.UniqueConstraint('uuid')
    )
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.create_index('networks_host_idx', ['host'], unique=False)

    op.create_table('security_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('project_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'name', 'deleted', name='uniq_security_groups0project_id0name0deleted')
    )
    op.create_table('security_group_instance_association',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('security_group_id', sa.Integer(), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['instance_uuid'], ['instances.uuid'], ),
    sa.ForeignKeyConstraint(['security_group_id'], ['security_groups.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('security_group_id', 'instance_uuid', 'deleted', name='uniq_sgia0group0instance0deleted')
    )
    op.create_table('security_group_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('parent_group_id', sa.Integer(), nullable=False),
    sa.Column('protocol', sa.String(length=255), nullable=True),
    sa.Column('from_port', sa.Integer(), nullable=True),
    sa.Column('to_port', sa.Integer(), nullable=True),
    sa.Column('cidr', sa.String(length=43), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['security_groups.id'], ),
    sa.ForeignKeyConstraint(['parent_group_id'], ['security_groups.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('virtual_interfaces',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('network_id', sa.Integer(), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('tag', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['instance_uuid'], ['instances.uuid'], ),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('address', 'deleted', name='uniq_virtual_interfaces0address0deleted'),
    sa.UniqueConstraint('instance_uuid', 'network_id', 'deleted', name='uniq_vifs0instance0network0deleted'),
    sa.UniqueConstraint('uuid')
    )
    op.create_table('fixed_ips',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=39), nullable=False),
    sa.Column('network_id', sa.Integer(), nullable=False),
    sa.Column('virtual_interface_id', sa.Integer(), nullable=True),
    sa.Column('instance_uuid', sa.String(length=36), nullable=True),
    sa.Column('allocated', sa.Boolean(), nullable=False),
    sa.Column('leased', sa.Boolean(), nullable=False),
    sa.Column('reserved', sa.Boolean(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['instance_uuid'], ['instances.uuid'], ),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], ),
    sa.ForeignKeyConstraint(['virtual_interface_id'], ['virtual_interfaces.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('address', 'deleted', name='uniq_fixed_ips0address0deleted'),
    sa.UniqueConstraint('virtual_interface_id', 'deleted', name='uniq_fixed_ips0vif0deleted')
    )
    with op.batch_alter_table('fixed_ips', schema=None) as batch_op:
        batch_op.create_index('fixed_ips_deleted_allocated_updated_at_idx', ['deleted', 'allocated', 'updated_at'], unique=False)
        batch_op.create_index('fixed_ips_instance_uuid_idx', ['instance_uuid'], unique=False)
        batch_op.create_index('fixed_ips_lru_idx', ['network_id', 'updated_at', 'id'], unique=False, sqlite_where=sa.text('deleted = 0 AND reserved = 0 AND leased = 0 AND instance_uuid IS NULL AND host IS NULL AND updated_at IS NOT NULL'), postgresql_where=sa.text('deleted = 0 AND reserved = false AND leased = false AND instance_uuid IS NULL AND host IS NULL AND updated_at IS NOT NULL'))
        batch_op.create_index('fixed_ips_never_used_idx', ['network_id', 'id'], unique=False, sqlite_where=sa.text('deleted = 0 AND reserved = 0 AND leased = 0 AND instance_uuid IS NULL AND host IS NULL AND updated_at IS NULL'), postgresql_where=sa.text('deleted = 0 AND reserved = false AND leased = false AND instance_uuid IS NULL AND host IS NULL AND updated_at IS NULL'))

    op.create_table('floating_ips',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=39), nullable=False),
    sa.Column('fixed_ip_id', sa.Integer(), nullable=True),
    sa.Column('project_id', sa.String(length=255), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('auto_assigned', sa.Boolean(), nullable=False),
    sa.Column('pool', sa.String(length=255), nullable=False),
    sa.Column('interface', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['fixed_ip_id'], ['fixed_ips.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('address', 'deleted', name='uniq_floating_ips0address0deleted'),
    sa.UniqueConstraint('fixed_ip_id', 'deleted', name='uniq_floating_ips0fixed_ip_id0deleted')
    )
    with op.batch_alter_table('floating_ips', schema=None) as batch_op:
        batch_op.create_index('floating_ips_pool_deleted_fixed_ip_id_project_id_idx', ['pool', 'deleted', 'fixed_ip_id', 'project_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('floating_ips', schema=None) as batch_op:
        batch_op.drop_index('floating_ips_pool_deleted_fixed_ip_id_project_id_idx')

    op.drop_table('floating_ips')
    with op.batch_alter_table('fixed_ips', schema=None) as batch_op:
        batch_op.drop_index('fixed_ips_never_used_idx', sqlite_where=sa.text('deleted = 0 AND reserved = 0 AND leased = 0 AND instance_uuid IS NULL AND host IS NULL AND updated_at IS NULL'), postgresql_where=sa.text('deleted = 0 AND reserved = false AND leased = false AND instance_uuid IS NULL AND host IS NULL AND updated_at IS NULL'))
        batch_op.drop_index('fixed_ips_lru_idx', sqlite_where=sa.text('deleted = 0 AND reserved = 0 AND leased = 0 AND instance_uuid IS NULL AND host IS NULL AND updated_at IS NOT NULL'), postgresql_where=sa.text('deleted = 0 AND reserved = false AND leased = false AND instance_uuid IS NULL AND host IS NULL AND updated_at IS NOT NULL'))
        batch_op.drop_index('fixed_ips_instance_uuid_idx')
        batch_op.drop_index('fixed_ips_deleted_allocated_updated_at_idx')

    op.drop_table('fixed_ips')
    op.drop_table('virtual_interfaces')
    op.drop_table('security_group_rules')
    op.drop_table('security_group_instance_association')
    op.drop_table('security_groups')
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.drop_index('networks_host_idx')

    op.drop_table('networks')
    op.drop_table('lease_journal_offsets')
    op.drop_table('instances')
    op.drop_table('host_state')
    op.drop_table('counters')
