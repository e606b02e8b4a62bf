"""The second pass's text beside the live pass's, on `utterances`.

`text` is the transcript reports, search and QA read: the second pass's once it has run. `live_text` keeps
what the agent's screen showed, once the second pass has replaced `text` (null: the agent saw nothing there,
or there was no live pass, as for audited recordings). `text_pass` says which pass `text` is from ("live" or "second"; null for rows
stored before this revision, which are all live).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("utterances") as batch:
        batch.add_column(sa.Column("live_text", sa.Text(), nullable=True))
        batch.add_column(sa.Column("text_pass", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("utterances") as batch:
        batch.drop_column("text_pass")
        batch.drop_column("live_text")
