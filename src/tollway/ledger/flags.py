"""The gaming review list: flagged user-days, their evidence, and reviewers' verdicts.

A re-scan updates a flag's score and evidence but never its review: a dismissed flag
stays dismissed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Engine, select, update

from tollway.ledger.schema import gaming_flags

REVIEW_STATES = ("confirmed", "dismissed")


def upsert_flags(engine: Engine, flags: Sequence[Mapping[str, Any]], now_ms: int) -> int:
    """Store flags (dicts with the table's columns; `signals` and `sample_request_ids`
    as Python values); returns how many were new."""
    if not flags:
        return 0
    ids = [f["flag_id"] for f in flags]
    new = 0
    with engine.begin() as connection:
        stored = set(
            connection.execute(
                select(gaming_flags.c.flag_id).where(gaming_flags.c.flag_id.in_(ids))
            ).scalars()
        )
        for flag in flags:
            values = {
                "score": flag["score"],
                "tokens": flag["tokens"],
                "credited_tokens": flag["credited_tokens"],
                "signals": orjson.dumps(flag["signals"]).decode(),
                "sample_request_ids": orjson.dumps(list(flag["sample_request_ids"])).decode(),
                "updated_at_ms": now_ms,
            }
            if flag["flag_id"] in stored:
                connection.execute(
                    update(gaming_flags)
                    .where(gaming_flags.c.flag_id == flag["flag_id"])
                    .values(**values)
                )
                continue
            new += 1
            connection.execute(
                gaming_flags.insert().values(
                    flag_id=flag["flag_id"],
                    day_start_ms=flag["day_start_ms"],
                    org=flag["org"],
                    team=flag["team"],
                    user=flag["user"],
                    status="open",
                    created_at_ms=now_ms,
                    **values,
                )
            )
    return new


def list_flags(
    engine: Engine,
    *,
    since_ms: int,
    until_ms: int | None = None,
    status: str | None = None,
    org: str | None = None,
    team: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Flags of user-days from `since_ms` on, highest score first."""
    query = (
        select(gaming_flags)
        .where(gaming_flags.c.day_start_ms >= since_ms - since_ms % 86_400_000)
        .order_by(gaming_flags.c.score.desc(), gaming_flags.c.day_start_ms.desc())
        .limit(limit)
    )
    if until_ms is not None:
        query = query.where(gaming_flags.c.day_start_ms < until_ms)
    for column, value in (("status", status), ("org", org), ("team", team)):
        if value is not None:
            query = query.where(gaming_flags.c[column] == value)
    with engine.connect() as connection:
        return [_flag(row) for row in connection.execute(query).mappings()]


def get_flag(engine: Engine, flag_id: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = (
            connection.execute(select(gaming_flags).where(gaming_flags.c.flag_id == flag_id))
            .mappings()
            .first()
        )
    return None if row is None else _flag(row)


def review_flag(
    engine: Engine, flag_id: str, status: str, reviewer: str, note: str | None, now_ms: int
) -> bool:
    """Record a reviewer's verdict; False when there is no such flag."""
    if status not in REVIEW_STATES:
        raise ValueError(f"status must be one of {', '.join(REVIEW_STATES)}")
    with engine.begin() as connection:
        result = connection.execute(
            update(gaming_flags)
            .where(gaming_flags.c.flag_id == flag_id)
            .values(status=status, reviewer=reviewer, review_note=note, reviewed_at_ms=now_ms)
        )
    return bool(result.rowcount)


def _flag(row: Mapping[Any, Any]) -> dict[str, Any]:
    flag = dict(row)
    flag["signals"] = orjson.loads(flag["signals"])
    flag["sample_request_ids"] = orjson.loads(flag["sample_request_ids"])
    return flag
