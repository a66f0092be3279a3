"""Prompt logs (redacted, with retention) and the audit of their reads.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prompt_logs",
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("org", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("data_class", sa.String(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index("ix_prompt_logs_expires_at_ms", "prompt_logs", ["expires_at_ms"])
    op.create_index("ix_prompt_logs_org_team", "prompt_logs", ["org", "team"])
    op.create_table(
        "prompt_log_reads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("read_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("reader_key_id", sa.String(), nullable=False),
        sa.Column("reader_role", sa.String(), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_prompt_log_reads_request_id", "prompt_log_reads", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_prompt_log_reads_request_id", table_name="prompt_log_reads")
    op.drop_table("prompt_log_reads")
    op.drop_index("ix_prompt_logs_org_team", table_name="prompt_logs")
    op.drop_index("ix_prompt_logs_expires_at_ms", table_name="prompt_logs")
    op.drop_table("prompt_logs")
