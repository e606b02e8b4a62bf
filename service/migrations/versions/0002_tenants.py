"""The tenant (integrator or QA tenant) that owns a call, on `calls` and on the call list's `audit_calls`.

Nullable: calls stored before tenants existed belong to none, and a single-tenant deployment never sets it.
Indexed: access control filters every list by it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("calls", "audit_calls")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("tenant", sa.String(128), nullable=True))
            batch.create_index(f"ix_{table}_tenant", ["tenant"])


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_tenant")
            batch.drop_column("tenant")
