"""Budgets and rate limits enforced by a running gateway, seen through the official SDKs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.gateway.test_openai_sdk import ledger_row
from tests.harness import ADMIN_KEY, GatewayThread, settings_for
from tollway.metering.tokens import count_tokens
from tollway.providers.simulated import SimulatedServer

PROMPT = "budget probe sim:tokens=10"
CHARGE = count_tokens(PROMPT) + 3 + 10  # input (with message framing) + output tokens


def config(sim: SimulatedServer) -> dict[str, Any]:
    return {
        "providers": [{"name": "sim", "kind": "simulated", "base_url": sim.base_url}],
        "models": [
            {"name": "gpt-test", "price_as": "gpt-5.4", "deployments": [{"provider": "sim"}]},
            {
                "name": "claude-test",
                "price_as": "claude-sonnet-4-6",
                "deployments": [{"provider": "sim"}],
            },
        ],
        "budgets": [
            {
                "scope": "team",
                "subject": "acme/capped",
                "unit": "tokens_total",
                "window": "day",
                "soft_limit": 2 * CHARGE,
                "hard_limit": 5 * CHARGE + CHARGE // 2,
            },
            {
                "scope": "user",
                "subject": "acme/open/bea",
                "unit": "usd_actual",
                "window": "month",
                "hard_limit": "$100",
            },
        ],
        "rate_limits": [{"scope": "user", "subject": "acme/rl/rita", "rpm": 3}],
        "peak": {"timezone": "UTC", "default_weight": 1.0, "rules": [], "tags": {"batch": 0.5}},
    }


@pytest.fixture(scope="module")
def budget_gateway(
    sim: SimulatedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayThread]:
    data_dir = tmp_path_factory.mktemp("budget-gateway")
    server = GatewayThread(settings_for(config(sim), data_dir)).start()
    yield server
    server.stop()


def client(gateway: GatewayThread, user: str, team: str) -> openai.OpenAI:
    key, _ = gateway.runtime.key_store.create(user, team, "acme")
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)


def ask(oai: openai.OpenAI, **extra: Any) -> Any:
    return oai.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": PROMPT}], max_tokens=10, **extra
    )


def test_team_hard_limit_rejects_with_a_clear_429(
    budget_gateway: GatewayThread, sim: SimulatedServer, tmp_path: Path
) -> None:
    oai = client(budget_gateway, "cam", "capped")
    remaining = []
    for _ in range(5):
        raw = ask(oai)
        remaining.append(int(raw.headers["x-tollway-budget-remaining"]))
        assert raw.headers["x-tollway-budget"] == "team:capped daily (tokens total)"
    assert remaining == [5 * CHARGE + CHARGE // 2 - CHARGE * i for i in range(1, 6)]

    with pytest.raises(openai.RateLimitError) as info:
        ask(oai)
    message = info.value.message
    assert "team:capped daily" in message and f"limit {5 * CHARGE + CHARGE // 2:,}" in message
    assert "resets at" in message
    assert int(info.value.response.headers["retry-after"]) >= 1
    row = ledger_row(budget_gateway, info.value.response.headers["x-tollway-request-id"])
    assert row["status"] == 429 and row["error_class"] == "BudgetExceeded"

    # the same refusal parses with the Anthropic SDK
    key, _ = budget_gateway.runtime.key_store.create("cara", "capped", "acme")
    claude = anthropic.Anthropic(base_url=budget_gateway.base_url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as refused:
        claude.messages.create(
            model="claude-test", max_tokens=10, messages=[{"role": "user", "content": PROMPT}]
        )
    assert "team:capped daily" in refused.value.message

    # a restarted gateway rebuilds the counters from the ledger: still refused
    restarted = GatewayThread(budget_gateway.settings).start()
    try:
        again = openai.OpenAI(
            base_url=restarted.base_url + "/v1", api_key=oai.api_key, max_retries=0
        )
        with pytest.raises(openai.RateLimitError):
            ask(again)
    finally:
        restarted.stop()


def test_peak_weight_is_recorded_and_cost_stays_raw(budget_gateway: GatewayThread) -> None:
    oai = client(budget_gateway, "bea", "open")
    plain = ask(oai)
    batch = ask(oai, extra_headers={"x-tollway-tags": "batch"})
    row = ledger_row(budget_gateway, plain.headers["x-tollway-request-id"])
    assert row["peak_weight"] == 1.0 and row["weighted_charge_pusd"] == row["actual_cost_pusd"]
    row = ledger_row(budget_gateway, batch.headers["x-tollway-request-id"])
    assert row["peak_weight"] == 0.5
    assert row["weighted_charge_pusd"] == -(-row["actual_cost_pusd"] // 2)  # rounded up
    assert row["list_cost_pusd"] > 0  # billing keeps the provider's price


def test_requests_per_minute(budget_gateway: GatewayThread) -> None:
    oai = client(budget_gateway, "rita", "rl")
    seen = []
    for _ in range(3):
        raw = ask(oai)
        seen.append(raw.headers["x-ratelimit-remaining-requests"])
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
    assert seen == ["2", "1", "0"]
    with pytest.raises(openai.RateLimitError) as info:
        ask(oai)
    assert "requests per minute" in info.value.message
    assert info.value.response.headers["retry-after"]


def test_budgets_through_the_admin_api(budget_gateway: GatewayThread) -> None:
    from tests.admin.test_api import call

    status, body = call(
        budget_gateway,
        "PUT",
        "/admin/v1/budgets/dana-daily",
        {
            "scope": "user",
            "subject": "acme/apis/dana",
            "unit": "tokens_total",
            "window": "rolling 24h",
            "hard_limit": 2 * CHARGE,
        },
    )
    assert status == 200, body
    assert body["items"][0]["hard_limit"] == 2 * CHARGE and body["items"][0]["used"] == 0
    oai = client(budget_gateway, "dana", "apis")
    ask(oai)
    ask(oai)
    with pytest.raises(openai.RateLimitError):
        ask(oai)

    status, listing = call(budget_gateway, "GET", "/admin/v1/budgets")
    assert status == 200
    mine = next(b for b in listing["budgets"] if b["id"] == "dana-daily")
    assert (mine["used"], mine["source"], mine["window"]) == (2 * CHARGE, "api", "rolling 24h")
    team = next(b for b in listing["budgets"] if b["id"] == "team:acme/capped:daily:tokens_total")
    assert team["source"] == "config" and team["soft_exceeded"]
    assert any(r["metric"] == "requests" for r in listing["rate_limits"])

    status, body = call(
        budget_gateway,
        "PUT",
        "/admin/v1/budgets/bad",
        {"scope": "team", "subject": "acme/x", "window": "fortnight", "hard_limit": 5},
    )
    assert status == 400 and "window" in body["error"]["message"]
    status, body = call(
        budget_gateway, "DELETE", "/admin/v1/budgets/team:acme/capped:daily:tokens_total"
    )
    assert status == 404 or "config file" in body["error"]["message"]

    status, _ = call(budget_gateway, "DELETE", "/admin/v1/budgets/dana-daily")
    assert status == 200
    ask(oai)  # no budget any more


def test_peak_schedule_through_the_admin_api(budget_gateway: GatewayThread) -> None:
    from tests.admin.test_api import call

    status, body = call(budget_gateway, "GET", "/admin/v1/peak-schedule")
    assert status == 200 and body["source"] == "config" and body["weight_now"] == 1.0
    flat3 = {"timezone": "UTC", "default_weight": 3.0, "rules": []}
    status, body = call(budget_gateway, "PUT", "/admin/v1/peak-schedule", flat3)
    assert status == 200 and body["source"] == "api" and body["weight_now"] == 3.0
    oai = client(budget_gateway, "pia", "open")
    row = ledger_row(budget_gateway, ask(oai).headers["x-tollway-request-id"])
    assert row["peak_weight"] == 3.0
    status, body = call(budget_gateway, "PUT", "/admin/v1/peak-schedule", {"rules": []})
    assert status == 400 and "timezone" in body["error"]["message"]
    original = budget_gateway.settings.peak
    status, _ = call(budget_gateway, "PUT", "/admin/v1/peak-schedule", original)
    assert status == 200


def test_budgets_cli_live_and_from_the_ledger(
    budget_gateway: GatewayThread,
    sim: SimulatedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from tests.harness import write_config
    from tollway.cli import app

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TOLLWAY_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("TOLLWAY_DATA_DIR", str(budget_gateway.settings.resolved_data_dir))
    path = write_config(tmp_path / "tollway.yaml", config(sim))
    live = CliRunner().invoke(app, ["budgets", "--url", budget_gateway.base_url])
    assert live.exit_code == 0, live.output
    assert "live from" in live.output and "team:capped daily" in live.output
    used_line = next(line for line in live.output.splitlines() if "team:capped" in line)
    assert f"{5 * CHARGE:,}" in used_line

    offline = CliRunner().invoke(
        app, ["budgets", "--url", "http://127.0.0.1:9", "--config", str(path)]
    )
    assert offline.exit_code == 0, offline.output
    assert "from the ledger" in offline.output
    used_line = next(line for line in offline.output.splitlines() if "team:capped" in line)
    assert f"{5 * CHARGE:,}" in used_line
