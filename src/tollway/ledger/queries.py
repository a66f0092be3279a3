"""Read side of the ledger: usage reports (from the hourly rollups only) and single requests.

Functions are synchronous and take an `Engine`; async callers run them in a thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Engine, func, literal_column, select

from tollway.ledger.schema import ROLLUP_SUMS, requests, usage_hourly

GROUP_KEYS = ("org", "team", "user", "model", "provider")
GRANULARITIES = ("total", "hour", "day")
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
PUSD_PER_USD = 10**12

_REQUEST_FILTERS: dict[str, ColumnElement[Any]] = {
    "org": requests.c.org,
    "team": requests.c.team,
    "user": requests.c.user,
    "key_id": requests.c.key_id,
    "provider": requests.c.provider,
    "api": requests.c.api,
    "model": func.coalesce(func.nullif(requests.c.served_model, ""), requests.c.requested_model),
}


def usage(
    engine: Engine,
    *,
    group_by: Sequence[str] = (),
    granularity: str = "total",
    since_ms: int,
    until_ms: int,
    filters: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Sums of usage per group (and per hour or UTC day), from `usage_hourly`.

    Resolution is one hour: the hours that overlap `[since_ms, until_ms)` count
    whole. Rows are ordered by bucket, then by the group keys. Raises
    `ValueError` naming an unknown group key, filter or granularity.
    """
    keys = _checked_keys(group_by, "group_by")
    _checked_keys(filters or {}, "filter")
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; use one of {GRANULARITIES}")

    hour = usage_hourly.c.hour_start_ms
    columns: list[ColumnElement[Any]] = [usage_hourly.c[key] for key in keys]
    if granularity == "hour":
        columns.append(hour.label("bucket_start_ms"))
    elif granularity == "day":
        # A literal, not a bound parameter, so GROUP BY repeats exactly the selected expression.
        day_ms: ColumnElement[int] = literal_column(str(DAY_MS))
        columns.append((hour - hour % day_ms).label("bucket_start_ms"))
    groups = list(columns)
    columns += [func.sum(usage_hourly.c[name]).label(name) for name in ROLLUP_SUMS]

    query = select(*columns).where(hour >= since_ms - since_ms % HOUR_MS, hour < until_ms)
    for key, value in (filters or {}).items():
        query = query.where(usage_hourly.c[key] == value)
    if groups:
        query = query.group_by(*groups).order_by(*groups[len(keys) :], *groups[: len(keys)])

    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [_usage_row(row, keys, granularity) for row in rows if row["requests"] is not None]


def _checked_keys(names: Sequence[str] | Mapping[str, str], what: str) -> list[str]:
    keys: list[str] = []
    for name in names:
        if name not in GROUP_KEYS:
            raise ValueError(f"unknown {what} {name!r}; use any of {', '.join(GROUP_KEYS)}")
        if name not in keys:
            keys.append(name)
    return keys


def _usage_row(row: Mapping[Any, Any], keys: Sequence[str], granularity: str) -> dict[str, Any]:
    result: dict[str, Any] = {key: row[key] for key in keys}
    if granularity != "total":
        result["bucket_start_ms"] = int(row["bucket_start_ms"])
    # PostgreSQL sums bigints as numeric (Decimal): back to exact ints.
    for name in ROLLUP_SUMS:
        if name != "latency_ms_sum":
            result[name] = int(row[name])
    result["total_tokens"] = result["input_tokens"] + result["output_tokens"]
    result["list_cost_usd"] = result["list_cost_pusd"] / PUSD_PER_USD
    result["actual_cost_usd"] = result["actual_cost_pusd"] / PUSD_PER_USD
    result["avg_latency_ms"] = float(row["latency_ms_sum"]) / result["requests"]
    return result


def get_request(engine: Engine, request_id: str) -> dict[str, Any] | None:
    """The full ledger row of one request (tags as a list, extra as a dict), or None."""
    with engine.connect() as connection:
        row = (
            connection.execute(select(requests).where(requests.c.request_id == request_id))
            .mappings()
            .first()
        )
    return None if row is None else _request_row(row)


def recent_requests(
    engine: Engine,
    limit: int = 100,
    filters: Mapping[str, str] | None = None,
    *,
    before_ms: int | None = None,
) -> list[dict[str, Any]]:
    """The newest requests first, optionally filtered by equality on org, team,
    user, key_id, provider, api or model (served, else requested) and started
    before `before_ms` (for paging)."""
    query = select(requests).order_by(requests.c.started_at_ms.desc()).limit(max(0, limit))
    for key, value in (filters or {}).items():
        column = _REQUEST_FILTERS.get(key)
        if column is None:
            raise ValueError(f"unknown filter {key!r}; use any of {', '.join(_REQUEST_FILTERS)}")
        query = query.where(column == value)
    if before_ms is not None:
        query = query.where(requests.c.started_at_ms < before_ms)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [_request_row(row) for row in rows]


def _request_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    result = dict(row)
    result["tags"] = orjson.loads(result["tags"])
    result["extra"] = orjson.loads(result["extra"])
    result["stream"] = bool(result["stream"])
    result["estimated"] = bool(result["estimated"])
    return result
