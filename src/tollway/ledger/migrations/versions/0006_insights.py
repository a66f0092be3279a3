"""Insights: per-user daily counts, outcomes, the gaming review list, alert history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DAILY_SUMS = (
    "requests",
    "tokens",
    "credited_tokens",
    "actual_cost_pusd",
    "gamed_requests",
    "exempt_requests",
    "duplicate_requests",
    "near_duplicate_requests",
    "regular_requests",
    "length_burns",
    "in_house_tokens",
)


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(
            sa.Column("prompt_sketch", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "user_daily",
        sa.Column("day_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("org", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        *(sa.Column(n, sa.BigInteger(), nullable=False, server_default="0") for n in _DAILY_SUMS),
        sa.PrimaryKeyConstraint("day_start_ms", "org", "team", "user", name="pk_user_daily"),
    )
    op.create_index("ix_user_daily_user_day", "user_daily", ["user", "day_start_ms"])
    op.create_table(
        "outcomes",
        sa.Column("outcome_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("org", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("actors", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False, server_default="1"),
        sa.Column("occurred_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("title", sa.String(), nullable=True),
        sa.Column("refs", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("voided_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("voided_by", sa.String(), nullable=True),
        sa.Column("extra", sa.Text(), nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("outcome_id", name="pk_outcomes"),
    )
    op.create_index("ix_outcomes_occurred_at_ms", "outcomes", ["occurred_at_ms"])
    op.create_index(
        "ix_outcomes_org_team_occurred_at_ms", "outcomes", ["org", "team", "occurred_at_ms"]
    )
    op.create_table(
        "outcome_actors",
        sa.Column("outcome_id", sa.String(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("occurred_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("outcome_id", "user", name="pk_outcome_actors"),
    )
    op.create_index(
        "ix_outcome_actors_user_occurred_at_ms", "outcome_actors", ["user", "occurred_at_ms"]
    )
    op.create_table(
        "gaming_flags",
        sa.Column("flag_id", sa.String(), nullable=False),
        sa.Column("day_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("org", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("credited_tokens", sa.BigInteger(), nullable=False),
        sa.Column("signals", sa.Text(), nullable=False),
        sa.Column("sample_request_ids", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reviewer", sa.String(), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("reviewed_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("flag_id", name="pk_gaming_flags"),
    )
    op.create_index("ix_gaming_flags_day_start_ms", "gaming_flags", ["day_start_ms"])
    op.create_index("ix_gaming_flags_org_team", "gaming_flags", ["org", "team"])
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("org", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=True),
        sa.Column("dedup_key", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("opened_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("deliveries", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("feedback", sa.String(), nullable=True),
        sa.Column("feedback_note", sa.Text(), nullable=True),
        sa.Column("feedback_by", sa.String(), nullable=True),
        sa.Column("feedback_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_opened_at_ms", "alerts", ["opened_at_ms"])
    op.create_index("ix_alerts_dedup_key_state", "alerts", ["dedup_key", "state"])


def downgrade() -> None:
    for table in ("alerts", "gaming_flags", "outcome_actors", "outcomes", "user_daily"):
        op.drop_table(table)
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("prompt_sketch")
