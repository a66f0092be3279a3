"""The ledger's tables, as SQLAlchemy Core metadata (SQLite and PostgreSQL alike).

This module describes the current shape; the migrations in `migrations/versions/`
create it, and a test checks that the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

# Alembic's bookkeeping table, named so the ledger can share a PostgreSQL database.
VERSION_TABLE = "tollway_alembic_version"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One row per request; `tags` and `extra` are JSON text so both backends store them alike.
requests = Table(
    "requests",
    metadata,
    Column("request_id", String, primary_key=True),
    Column("started_at_ms", BigInteger, nullable=False),
    Column("finished_at_ms", BigInteger, nullable=False),
    Column("key_id", String, nullable=False),
    Column("user", String, nullable=False),
    Column("team", String, nullable=False),
    Column("org", String, nullable=False),
    Column("api", String, nullable=False),
    Column("requested_model", String, nullable=False),
    Column("served_model", String, nullable=False),
    Column("provider", String, nullable=False),
    Column("deployment", String, nullable=False),
    Column("tags", Text, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("cached_input_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("list_cost_pusd", BigInteger, nullable=False),
    Column("actual_cost_pusd", BigInteger, nullable=False),
    Column("peak_weight", Float, nullable=False),
    Column("weighted_charge_pusd", BigInteger, nullable=False),
    Column("status", Integer, nullable=False),
    Column("error_class", String, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float, nullable=True),
    Column("stream", Boolean, nullable=False),
    Column("estimated", Boolean, nullable=False),
    Column("max_tokens", Integer, nullable=True),
    Column("finish_reason", String, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("route_rule", String, nullable=True),
    Column("route_reason", String, nullable=True),
    Column("prompt_fingerprint", String, nullable=False),
    Column("extra", Text, nullable=False),
    # Steering: the request went to another model than asked; what the asked-for one
    # would have cost for the same usage (equal to actual_cost_pusd when not steered).
    Column("steered", Boolean, nullable=False, server_default="0"),
    Column("requested_cost_pusd", BigInteger, nullable=False, server_default="0"),
    # Gaming detection: the request's score in [0, 1] (see tollway.insights.signals).
    Column("gaming_score", Float, nullable=False, server_default="0"),
    # Near-duplicate sketch of the prompt's new part (tollway.insights.sketch); 0 = none.
    Column("prompt_sketch", BigInteger, nullable=False, server_default="0"),
)
Index("ix_requests_started_at_ms", requests.c.started_at_ms)
Index(
    "ix_requests_org_team_started_at_ms", requests.c.org, requests.c.team, requests.c.started_at_ms
)
Index("ix_requests_user_started_at_ms", requests.c.user, requests.c.started_at_ms)
Index("ix_requests_key_id", requests.c.key_id)

ROLLUP_KEYS = ("hour_start_ms", "org", "team", "user", "model", "provider")
ROLLUP_SUMS = (
    "requests",
    "errors",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "list_cost_pusd",
    "actual_cost_pusd",
    "weighted_charge_pusd",
    "estimated",
    "latency_ms_sum",
    "steered",
    "requested_cost_pusd",
    "credited_tokens",
)

# Hourly sums per (org, team, user, model, provider); every report reads this, never `requests`.
# `model` is the served model (the requested one when nothing was served).
usage_hourly = Table(
    "usage_hourly",
    metadata,
    Column("hour_start_ms", BigInteger, nullable=False),
    Column("org", String, nullable=False),
    Column("team", String, nullable=False),
    Column("user", String, nullable=False),
    Column("model", String, nullable=False),
    Column("provider", String, nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("cached_input_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("list_cost_pusd", BigInteger, nullable=False),
    Column("actual_cost_pusd", BigInteger, nullable=False),
    Column("weighted_charge_pusd", BigInteger, nullable=False),
    Column("estimated", BigInteger, nullable=False),
    Column("latency_ms_sum", Float, nullable=False),
    Column("steered", BigInteger, nullable=False, server_default="0"),
    Column("requested_cost_pusd", BigInteger, nullable=False, server_default="0"),
    Column("credited_tokens", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint(*ROLLUP_KEYS),
)

# Virtual keys; the plaintext is never stored, only its SHA-256.
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String, primary_key=True),
    Column("key_hash", String, nullable=False, unique=True),
    Column("prefix", String, nullable=False),
    Column("name", String, nullable=True),
    Column("org", String, nullable=False),
    Column("team", String, nullable=False),
    Column("user", String, nullable=False),
    Column("role", String, nullable=False),
    Column("tags", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=True),
    Column("revoked_at_ms", BigInteger, nullable=True),
    Column("updated_at_ms", BigInteger, nullable=False),
)
Index("ix_api_keys_org_team", api_keys.c.org, api_keys.c.team)
Index("ix_api_keys_updated_at_ms", api_keys.c.updated_at_ms)

# Small settings (e.g. a generated admin key's id); values are opaque text.
kv = Table(
    "kv",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)

# Control-plane policies declared through the admin API (budgets, rate limits, the peak
# schedule): the body is the same mapping the YAML config takes. Deleting keeps a
# tombstone so polling replicas see the change.
policies = Table(
    "policies",
    metadata,
    Column("kind", String, nullable=False),
    Column("policy_id", String, nullable=False),
    Column("body", Text, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("deleted_at_ms", BigInteger, nullable=True),
    PrimaryKeyConstraint("kind", "policy_id"),
)
Index("ix_policies_updated_at_ms", policies.c.updated_at_ms)

# Prompt logs (governance): what was sent and answered, redacted, kept until `expires_at_ms`.
# `prompt`/`response` are NULL in `metadata` mode; the text never leaves this table unaudited.
prompt_logs = Table(
    "prompt_logs",
    metadata,
    Column("request_id", String, primary_key=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("org", String, nullable=False),
    Column("team", String, nullable=False),
    Column("user", String, nullable=False),
    Column("model", String, nullable=False),
    Column("mode", String, nullable=False),
    Column("data_class", String, nullable=False),
    Column("findings", Text, nullable=False),
    Column("prompt", Text, nullable=True),
    Column("response", Text, nullable=True),
)
Index("ix_prompt_logs_expires_at_ms", prompt_logs.c.expires_at_ms)
Index("ix_prompt_logs_org_team", prompt_logs.c.org, prompt_logs.c.team)

# Every read of a logged prompt, by whom.
prompt_log_reads = Table(
    "prompt_log_reads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("read_at_ms", BigInteger, nullable=False),
    Column("request_id", String, nullable=False),
    Column("reader_key_id", String, nullable=False),
    Column("reader_role", String, nullable=False),
    Column("granted", Boolean, nullable=False),
)
Index("ix_prompt_log_reads_request_id", prompt_log_reads.c.request_id)

DAILY_KEYS = ("day_start_ms", "org", "team", "user")
DAILY_SUMS = (
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

# Per user and UTC day: the counts behind per-user gaming signals, written with the
# requests in the same transaction (tollway.ledger.daily). `regular_requests` are those
# ending a run of evenly spaced requests (scripted cadence); `exempt_requests` came
# from keys tagged as sanctioned automation. `in_house_tokens` are the tokens of requests
# served by a model or provider that was configured in-house when they were written.
user_daily = Table(
    "user_daily",
    metadata,
    *(
        Column(name, String if name in ("org", "team", "user") else BigInteger, nullable=False)
        for name in DAILY_KEYS
    ),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in DAILY_SUMS),
    PrimaryKeyConstraint(*DAILY_KEYS),
)
Index("ix_user_daily_user_day", user_daily.c.user, user_daily.c.day_start_ms)

# Outcomes (merged PRs, landed diffs, resolved tickets, incidents, reverts). `outcome_id`
# is the caller's idempotency key. An outcome stops counting once `voided_at_ms` is set
# (reverted, or linked to an incident, within the quality window).
outcomes = Table(
    "outcomes",
    metadata,
    Column("outcome_id", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("org", String, nullable=False),
    Column("team", String, nullable=False),
    Column("actors", Text, nullable=False),
    Column("size", BigInteger, nullable=False, server_default="1"),
    Column("occurred_at_ms", BigInteger, nullable=False),
    Column("received_at_ms", BigInteger, nullable=False),
    Column("source", String, nullable=False),
    Column("url", String, nullable=True),
    Column("title", String, nullable=True),
    Column("refs", Text, nullable=False, server_default="[]"),
    Column("voided_at_ms", BigInteger, nullable=True),
    Column("voided_by", String, nullable=True),
    Column("extra", Text, nullable=False, server_default="{}"),
)
Index(
    "ix_outcomes_org_team_occurred_at_ms",
    outcomes.c.org,
    outcomes.c.team,
    outcomes.c.occurred_at_ms,
)
Index("ix_outcomes_occurred_at_ms", outcomes.c.occurred_at_ms)

# One row per (outcome, actor): who an outcome is attributed to.
outcome_actors = Table(
    "outcome_actors",
    metadata,
    Column("outcome_id", String, nullable=False),
    Column("user", String, nullable=False),
    Column("team", String, nullable=False),
    Column("occurred_at_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("outcome_id", "user"),
)
Index(
    "ix_outcome_actors_user_occurred_at_ms", outcome_actors.c.user, outcome_actors.c.occurred_at_ms
)

# The gaming review list: one flag per user-day whose score passed the threshold.
# Flags never punish; reviewers mark them confirmed or dismissed.
gaming_flags = Table(
    "gaming_flags",
    metadata,
    Column("flag_id", String, primary_key=True),
    Column("day_start_ms", BigInteger, nullable=False),
    Column("org", String, nullable=False),
    Column("team", String, nullable=False),
    Column("user", String, nullable=False),
    Column("score", Float, nullable=False),
    Column("tokens", BigInteger, nullable=False),
    Column("credited_tokens", BigInteger, nullable=False),
    Column("signals", Text, nullable=False),
    Column("sample_request_ids", Text, nullable=False),
    Column("status", String, nullable=False),
    Column("reviewer", String, nullable=True),
    Column("review_note", Text, nullable=True),
    Column("reviewed_at_ms", BigInteger, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)
Index("ix_gaming_flags_day_start_ms", gaming_flags.c.day_start_ms)
Index("ix_gaming_flags_org_team", gaming_flags.c.org, gaming_flags.c.team)

# Alert history: spikes, budget thresholds, forecasts; `evidence` is JSON. One open
# alert per `dedup_key`; feedback (useful | false | planned) is recorded by reviewers.
alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("scope", String, nullable=False),
    Column("subject", String, nullable=False),
    Column("org", String, nullable=False),
    Column("team", String, nullable=True),
    Column("dedup_key", String, nullable=False),
    Column("severity", String, nullable=False),
    Column("state", String, nullable=False),
    Column("title", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("opened_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("resolved_at_ms", BigInteger, nullable=True),
    Column("deliveries", Text, nullable=False, server_default="{}"),
    Column("feedback", String, nullable=True),
    Column("feedback_note", Text, nullable=True),
    Column("feedback_by", String, nullable=True),
    Column("feedback_at_ms", BigInteger, nullable=True),
)
Index("ix_alerts_opened_at_ms", alerts.c.opened_at_ms)
Index("ix_alerts_dedup_key_state", alerts.c.dedup_key, alerts.c.state)
