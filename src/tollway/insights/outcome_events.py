"""Outcome events as callers send them: validation, conversion to `Outcome`, and storage.

The public shape (one event, or `{"events": [...]}` of up to 1000)::

    {"id": "jira:PAY-812", "kind": "ticket_done", "actors": ["ada"], "team": "payments",
     "org": "acme", "size": 1, "occurred_at": "2026-03-02T14:05:00Z",
     "url": null, "title": null, "refs": []}

`id` is the idempotency key: sending an event twice stores it once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from tollway.errors import InvalidRequest
from tollway.ledger.outcomes import VOIDING_KINDS, Outcome, insert_outcomes
from tollway.ledger.schema import outcomes

OutcomeKind = Literal["pr_merged", "diff_landed", "ticket_done", "incident", "revert"]
KINDS: tuple[str, ...] = get_args(OutcomeKind)
MAX_BATCH = 1000
FUTURE_SLACK_MS = 3_600_000  # clocks differ; an hour ahead is allowed, more is a mistake
_EPOCH_MS_FLOOR = 946_684_800_000  # 2000-01-01: smaller numbers are seconds, not ms

Name = Annotated[str, Field(min_length=1, max_length=128)]


class OutcomeEvent(BaseModel):
    """One outcome as sent to `POST /admin/v1/outcomes` (unknown fields are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200, description="Idempotency key")
    kind: OutcomeKind
    actors: list[Name] = Field(min_length=1, max_length=50, description="Gateway user names")
    team: Name
    org: Name = "demo"
    size: int = Field(1, ge=0)
    occurred_at: int = Field(description="ISO-8601 time or epoch milliseconds")
    url: str | None = Field(None, max_length=2000)
    title: str | None = Field(None, max_length=500)
    refs: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=50, description="Outcome ids a revert/incident voids"
    )

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _epoch_ms(cls, value: Any) -> int:
        return parse_time_ms(value)

    @model_validator(mode="after")
    def _plausible(self, info: ValidationInfo) -> OutcomeEvent:
        context = info.context if isinstance(info.context, Mapping) else {}
        now_ms = int(context.get("now_ms") or time.time() * 1000)
        if self.occurred_at > now_ms + FUTURE_SLACK_MS:
            raise ValueError("occurred_at: more than an hour in the future")
        if self.refs and self.kind not in VOIDING_KINDS:
            raise ValueError(f"refs: only revert and incident outcomes name refs, not {self.kind}")
        return self

    def to_outcome(self, source: str = "api") -> Outcome:
        """The ledger's form of this event."""
        return Outcome(
            outcome_id=self.id,
            kind=self.kind,
            org=self.org,
            team=self.team,
            actors=tuple(dict.fromkeys(self.actors)),
            occurred_at_ms=self.occurred_at,
            source=source,
            size=self.size,
            url=self.url,
            title=self.title,
            refs=tuple(dict.fromkeys(self.refs)),
        )


class OutcomeBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[OutcomeEvent] = Field(min_length=1, max_length=MAX_BATCH)


def parse_time_ms(value: Any) -> int:
    """Epoch ms from an ISO-8601 time (UTC unless it says otherwise) or epoch ms."""
    if isinstance(value, bool):
        raise ValueError("expected an ISO-8601 time or epoch milliseconds")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int):
        if value < _EPOCH_MS_FLOOR:
            raise ValueError("epoch milliseconds before 2000 (seconds given?)")
        return value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not an ISO-8601 time: {value!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    raise ValueError("expected an ISO-8601 time or epoch milliseconds")


def parse_events(body: Any, *, now_ms: int) -> list[OutcomeEvent]:
    """One event or `{"events": [...]}`; `InvalidRequest` naming the first bad field."""
    if not isinstance(body, dict):
        raise InvalidRequest('The body must be one outcome event or {"events": [...]}.')
    try:
        if "events" in body:
            return OutcomeBatch.model_validate(body, context={"now_ms": now_ms}).events
        return [OutcomeEvent.model_validate(body, context={"now_ms": now_ms})]
    except ValidationError as exc:
        raise invalid(exc) from None


def invalid(exc: ValidationError) -> InvalidRequest:
    """The first validation error as a 400 naming its field, e.g. `events[3].kind`."""
    first = exc.errors(include_url=False)[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
    message = str(first["msg"]).removeprefix("Value error, ")
    field, _, rest = message.partition(": ")
    if rest and field in OutcomeEvent.model_fields:  # a cross-field check names its field
        where, message = f"{where}.{field}".lstrip("."), rest
    return InvalidRequest(f"{where}: {message}" if where else message, param=where or None)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What a call stored: `ids` are the outcomes new to the ledger, in the order sent."""

    accepted: int
    duplicates: int
    ids: list[str]


def ingest(
    engine: Engine,
    events: Sequence[OutcomeEvent | Outcome],
    *,
    now_ms: int,
    quality_window_days: int,
    source: str = "api",
) -> IngestResult:
    """Store the events not stored yet (one transaction); reverts and incidents void refs."""
    items = [e.to_outcome(source) if isinstance(e, OutcomeEvent) else e for e in events]
    for attempt in (1, 2):
        try:
            with engine.begin() as connection:
                fresh = insert_outcomes(
                    connection,
                    items,
                    received_at_ms=now_ms,
                    quality_window_days=quality_window_days,
                )
            break
        except IntegrityError:
            # A concurrent call stored one of these ids in between; the retry sees it.
            if attempt == 2:
                raise
    return IngestResult(len(fresh), len(items) - len(fresh), fresh)


def list_outcomes(
    engine: Engine,
    *,
    since_ms: int,
    until_ms: int,
    org: str | None = None,
    team: str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Stored outcomes that occurred in `[since_ms, until_ms)`, newest first."""
    query = (
        select(outcomes)
        .where(outcomes.c.occurred_at_ms >= since_ms, outcomes.c.occurred_at_ms < until_ms)
        .order_by(outcomes.c.occurred_at_ms.desc(), outcomes.c.outcome_id)
        .limit(max(0, limit))
    )
    for column, value in (("org", org), ("team", team), ("kind", kind)):
        if value is not None:
            query = query.where(outcomes.c[column] == value)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [_outcome_row(row) for row in rows]


def _outcome_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    out = dict(row)
    out["id"] = out.pop("outcome_id")
    for name in ("actors", "refs", "extra"):
        out[name] = orjson.loads(out[name])
    return out
