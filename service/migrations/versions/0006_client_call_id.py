"""Call ids per tenant: `calls.client_call_id`, the id as the phone system sent it where a call's key differs.

Two tenants may send the same call id. The second call's row key is then derived from its tenant and id
(`service.persistence.call_store.tenant_call_key`) and the id as sent is kept here; every other row keeps its
key, which is its id as sent, and this column null. Nothing is rewritten: calls stored before this revision are found by
the same ids as before. No index: calls are found by key, never by this column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("client_call_id", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("client_call_id")
