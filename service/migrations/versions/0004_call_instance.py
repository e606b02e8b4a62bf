"""The callwatch instance that ingests a call, on `calls`.

Several instances share one database; at start an instance marks interrupted the calls it left live when
it died, and must not touch the calls other instances have live right now. Nullable: calls stored before
this revision, and audited recordings, were ingested by no instance. Indexed: the start-up update filters
by it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("instance", sa.String(128), nullable=True))
        batch.create_index("ix_calls_instance", ["instance"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_instance")
        batch.drop_column("instance")
