"""Initial ledger schema: requests, hourly usage rollups, API keys, settings.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sums() -> list[sa.Column]:
    return [
        sa.Column(name, sa.BigInteger(), nullable=False)
        for name in (
            "input_tokens",
            "cached_input_tokens",
            "cache_write_tokens",
            "output_tokens",
            "reasoning_tokens",
        )
    ]


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("started_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("org", sa.String(), nullable=False),
        sa.Column("api", sa.String(), nullable=False),
        sa.Column("requested_model", sa.String(), nullable=False),
        sa.Column("served_model", sa.String(), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("deployment", sa.String(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        *_sums(),
        sa.Column("list_cost_pusd", sa.BigInteger(), nullable=False),
        sa.Column("actual_cost_pusd", sa.BigInteger(), nullable=False),
        sa.Column("peak_weight", sa.Float(), nullable=False),
        sa.Column("weighted_charge_pusd", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error_class", sa.String(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("max_tokens", sa.Integer(), nullable=True),
        sa.Column("finish_reason", sa.String(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("route_rule", sa.String(), nullable=True),
        sa.Column("route_reason", sa.String(), nullable=True),
        sa.Column("prompt_fingerprint", sa.String(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_requests"),
    )
    op.create_index("ix_requests_started_at_ms", "requests", ["started_at_ms"])
    op.create_index(
        "ix_requests_org_team_started_at_ms", "requests", ["org", "team", "started_at_ms"]
    )
    op.create_index("ix_requests_user_started_at_ms", "requests", ["user", "started_at_ms"])
    op.create_index("ix_requests_key_id", "requests", ["key_id"])

    op.create_table(
        "usage_hourly",
        sa.Column("hour_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("org", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        *_sums(),
        sa.Column("list_cost_pusd", sa.BigInteger(), nullable=False),
        sa.Column("actual_cost_pusd", sa.BigInteger(), nullable=False),
        sa.Column("weighted_charge_pusd", sa.BigInteger(), nullable=False),
        sa.Column("estimated", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms_sum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "hour_start_ms", "org", "team", "user", "model", "provider", name="pk_usage_hourly"
        ),
    )

    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("key_hash", sa.String(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("org", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_org_team", "api_keys", ["org", "team"])
    op.create_index("ix_api_keys_updated_at_ms", "api_keys", ["updated_at_ms"])

    op.create_table(
        "kv",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_kv"),
    )


def downgrade() -> None:
    op.drop_table("kv")
    op.drop_index("ix_api_keys_updated_at_ms", table_name="api_keys")
    op.drop_index("ix_api_keys_org_team", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("usage_hourly")
    op.drop_index("ix_requests_key_id", table_name="requests")
    op.drop_index("ix_requests_user_started_at_ms", table_name="requests")
    op.drop_index("ix_requests_org_team_started_at_ms", table_name="requests")
    op.drop_index("ix_requests_started_at_ms", table_name="requests")
    op.drop_table("requests")
