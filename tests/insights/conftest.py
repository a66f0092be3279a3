"""A gateway with impact and GitHub settings, and helpers to seed usage at chosen times."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.harness import ADMIN_KEY, GatewayThread, settings_for, vendor_and_in_house
from tollway.insights.in_house import daily_tracker
from tollway.ledger.record import LedgerRecord
from tollway.ledger.rows import RowWriter
from tollway.providers.simulated import SimulatedServer

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
BASE_DAY = 1_704_067_200_000  # 2024-01-01T00:00:00Z
GITHUB_SECRET_ENV = "TOLLWAY_TEST_GITHUB_SECRET"
_days = itertools.count(1)
_requests = itertools.count()

INSIGHTS = {
    "impact": {"attribution_hours": 24, "quality_window_days": 7, "min_group_size": 5},
    "github": {
        "secret_env": GITHUB_SECRET_ENV,
        "org": "octo",
        "identities": {
            "ada-gh": "ada",
            "grace@example.com": "grace",
            "Linus": "linus",
            "hopper": "hopper",
        },
        "repos": {"octo/api": "payments"},
    },
}


@pytest.fixture(scope="session")
def impact_gateway(
    sim: SimulatedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayThread]:
    """One gateway for the insights tests; `inhouse` (upstream `inhouse-coder` on the `gpu`
    provider) is in-house."""
    config = {**vendor_and_in_house(sim), "insights": INSIGHTS}
    server = GatewayThread(settings_for(config, tmp_path_factory.mktemp("impact-data"))).start()
    yield server
    server.stop()


def fresh_day() -> int:
    """The start of a UTC day no other test uses, with 10 days of room after it (reports
    cover whole days, so tests must not share them)."""
    return BASE_DAY + 10 * DAY_MS * next(_days)


def call(
    gateway: GatewayThread,
    method: str,
    path: str,
    body: Any = None,
    key: str | None = ADMIN_KEY,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """An HTTP call to the gateway; the answer's status and JSON body."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    sent = {"content-type": "application/json", **(headers or {})}
    if key is not None:
        sent["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        gateway.base_url + path, data=data, method=method, headers=sent
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def seed_usage(
    gateway: GatewayThread,
    org: str,
    team: str,
    user: str,
    at_ms: int,
    *,
    tokens: int = 1000,
    model: str = "gpt-test",
    provider: str = "vendor",
    cost_pusd: int = 1_000_000_000,
    gaming_score: float = 0.0,
) -> None:
    """One request's record (and so its rollups) at `at_ms`, written to the ledger as the
    gateway writes it: in-house by the gateway's settings."""
    record = LedgerRecord(
        request_id=f"req_seed_{next(_requests)}",
        started_at_ms=at_ms,
        finished_at_ms=at_ms + 100,
        key_id="key_seed",
        user=user,
        team=team,
        org=org,
        api="openai.chat",
        requested_model=model,
        served_model=model,
        provider=provider,
        input_tokens=tokens // 2,
        output_tokens=tokens - tokens // 2,
        actual_cost_pusd=cost_pusd,
        list_cost_pusd=cost_pusd,
        gaming_score=gaming_score,
    )
    writer = RowWriter(
        gateway.runtime.database.engine.dialect, daily_tracker(gateway.runtime.settings)
    )
    with gateway.runtime.database.engine.begin() as connection:
        writer.write(connection, [record])


def add_keys(gateway: GatewayThread, org: str, team: str, users: list[str]) -> None:
    """A key per user: attribution finds a user's usage under the teams of their keys."""
    for user in users:
        gateway.runtime.key_store.create(user, team, org)


def post_outcome(gateway: GatewayThread, **event: Any) -> dict[str, Any]:
    status, body = call(gateway, "POST", "/admin/v1/outcomes", event)
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def iso(ms: int) -> str:
    """ISO-8601 of epoch ms, UTC."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
