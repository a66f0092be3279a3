"""Gaming detection: a score per request, and credited tokens in the rollups.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("gaming_score", sa.Float(), nullable=False, server_default="0"))
    with op.batch_alter_table("usage_hourly") as batch:
        batch.add_column(
            sa.Column("credited_tokens", sa.BigInteger(), nullable=False, server_default="0")
        )
    # Rows from before scoring count in full.
    op.execute("UPDATE usage_hourly SET credited_tokens = input_tokens + output_tokens")


def downgrade() -> None:
    with op.batch_alter_table("usage_hourly") as batch:
        batch.drop_column("credited_tokens")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("gaming_score")
