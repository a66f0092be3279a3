"""Steering savings: whether a request was steered, and what the asked-for model would cost.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("steered", sa.Boolean(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("requested_cost_pusd", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("usage_hourly") as batch:
        batch.add_column(sa.Column("steered", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("requested_cost_pusd", sa.BigInteger(), nullable=False, server_default="0")
        )
    # Before this revision nothing was steered: what was asked for is what was paid.
    op.execute("UPDATE requests SET requested_cost_pusd = actual_cost_pusd")
    op.execute("UPDATE usage_hourly SET requested_cost_pusd = actual_cost_pusd")


def downgrade() -> None:
    for table in ("usage_hourly", "requests"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("requested_cost_pusd")
            batch.drop_column("steered")
