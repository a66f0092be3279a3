"""The graded ladder through the gateway: a team walking its budget from 0 to 100%."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.gateway.test_openai_sdk import ledger_row
from tests.harness import GatewayThread, settings_for, vendor_and_in_house
from tollway.metering.tokens import count_tokens
from tollway.providers.simulated import SimulatedServer

PROMPT = "ladder step sim:tokens=10"
CHARGE = count_tokens(PROMPT) + 3 + 10


def config(sim: SimulatedServer) -> dict[str, Any]:
    return {
        **vendor_and_in_house(sim),
        "budgets": [
            {
                "scope": "team",
                "subject": "acme/ladder",
                "unit": "tokens_total",
                "window": "day",
                "soft_limit": 10 * CHARGE,
                "hard_limit": 12 * CHARGE,
            }
        ],
        "peak": {"timezone": "UTC", "default_weight": 1.0, "rules": []},
        "steering": config_rules(),
    }


@pytest.fixture(scope="module")
def ladder_gateway(
    sim: SimulatedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayThread]:
    server = GatewayThread(settings_for(config(sim), tmp_path_factory.mktemp("ladder"))).start()
    yield server
    server.stop()


def test_team_walks_the_ladder(ladder_gateway: GatewayThread) -> None:
    key, _ = ladder_gateway.runtime.key_store.create("lee", "ladder", "acme")
    oai = openai.OpenAI(base_url=ladder_gateway.base_url + "/v1", api_key=key, max_retries=0)
    steps = []
    while True:
        try:
            raw = oai.chat.completions.with_raw_response.create(
                model="gpt-test", max_tokens=10, messages=[{"role": "user", "content": PROMPT}]
            )
        except openai.RateLimitError:
            steps.append(("blocked", None, None))
            break
        completion = raw.parse()
        row = ledger_row(ladder_gateway, raw.headers["x-tollway-request-id"])
        assert row["requested_model"] == "gpt-test"
        steps.append((row["served_model"], row["route_rule"], completion.usage.completion_tokens))
        assert len(steps) < 40

    served = [s[0] for s in steps]
    # 0-70%: the requested third-party model; at 80%: in-house; at 100%: in-house and capped
    assert served[:8] == ["gpt-test"] * 8
    assert steps[8] == ("inhouse-coder", "home", 10) and steps[9] == ("inhouse-coder", "home", 10)
    capped = steps[10:-1]
    assert capped and all(s == ("inhouse-coder", "cap", 4) for s in capped)
    assert steps[-1][0] == "blocked"  # only the hard limit blocks
    row_reason = ledger_row(ladder_gateway, raw.headers["x-tollway-request-id"])["route_reason"]
    assert "budget_soft_pct >=100" in row_reason


def test_route_explain_cli(
    ladder_gateway: GatewayThread,
    sim: SimulatedServer,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from tests.harness import write_config
    from tollway.cli import app

    monkeypatch.setenv("COLUMNS", "220")
    monkeypatch.setenv("TOLLWAY_DATA_DIR", str(ladder_gateway.settings.resolved_data_dir))
    path = str(write_config(tmp_path / "t.yaml", config(sim)))
    key, info = ladder_gateway.runtime.key_store.create("lou", "ladder", "acme")
    result = CliRunner().invoke(
        app, ["route", "explain", "--key", key, "--model", "gpt-test", "--config", path]
    )
    assert result.exit_code == 0, result.output
    # the team spent its budget in the test above: the capping rule applies
    assert "rule cap applies" in result.output and "cap_max_tokens" in result.output
    result = CliRunner().invoke(
        app, ["route", "explain", "--key", info.key_id, "--model", "inhouse", "--config", path]
    )
    assert "no rule matches" in result.output
    result = CliRunner().invoke(
        app, ["route", "explain", "--key", "key_nope", "--model", "gpt-test", "--config", path]
    )
    assert result.exit_code == 1


def test_savings_report(ladder_gateway: GatewayThread, monkeypatch: pytest.MonkeyPatch) -> None:
    from decimal import Decimal

    from typer.testing import CliRunner

    from tollway.cli import app
    from tollway.ledger.queries import usage

    engine = ladder_gateway.runtime.database.engine
    (row,) = usage(
        engine, group_by=["team"], since_ms=0, until_ms=2**62, filters={"team": "ladder"}
    )
    assert row["steered"] >= 3  # the in-house and capped steps of the ladder
    assert row["requested_cost_pusd"] > row["actual_cost_pusd"]  # in-house is cheaper
    # each steered request: GPT-5.4 prices for what the in-house model produced
    rows = (
        engine.connect()
        .exec_driver_sql(
            "SELECT input_tokens, output_tokens, requested_cost_pusd FROM requests WHERE steered"
        )
        .all()
    )
    for inp, out, requested in rows:
        assert Decimal(requested) == inp * Decimal("2.50") * 10**6 + out * Decimal(15) * 10**6

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TOLLWAY_DATA_DIR", str(ladder_gateway.settings.resolved_data_dir))
    result = CliRunner().invoke(app, ["usage", "--by", "team", "--savings", "--since", "1d"])
    assert result.exit_code == 0 and "Steering savings" in result.output
    saved = (row["requested_cost_pusd"] - row["actual_cost_pusd"]) / 10**12
    assert f"{saved:,.6f}" in result.output


def test_rules_through_the_admin_api(ladder_gateway: GatewayThread) -> None:
    from tests.admin.test_api import call

    status, body = call(ladder_gateway, "GET", "/admin/v1/routing/rules")
    assert status == 200 and body["source"] == "config"
    assert [r["id"] for r in body["rules"]] == ["cap", "home"]

    _, info = ladder_gateway.runtime.key_store.create("liv", "ladder", "acme")
    ask = {"key_id": info.key_id, "model": "gpt-test"}
    status, explained = call(ladder_gateway, "POST", "/admin/v1/routing/explain", ask)
    assert status == 200 and explained["applies"] == "cap"  # the team is past its soft limit
    assert explained["facts"]["budget_soft_fraction"] >= 1.0

    deny = [{"id": "freeze", "when": {"team": "acme/ladder"}, "then": {"deny": "Frozen."}}]
    status, body = call(ladder_gateway, "PUT", "/admin/v1/routing/rules", deny)
    assert status == 200 and body["source"] == "api"
    key, _ = ladder_gateway.runtime.key_store.create("lux", "ladder", "acme")
    oai = openai.OpenAI(base_url=ladder_gateway.base_url + "/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError, match="Frozen"):
        oai.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": PROMPT}]
        )
    status, body = call(ladder_gateway, "PUT", "/admin/v1/routing/rules", [{"id": "x"}])
    assert status == 400 and "then" in body["error"]["message"]
    status, _ = call(ladder_gateway, "PUT", "/admin/v1/routing/rules", config_rules())
    assert status == 200


def config_rules() -> list[dict[str, Any]]:
    return [
        {
            "id": "cap",
            "when": {"budget_soft_pct": ">=100", "third_party": True},
            "then": {"route_to": "inhouse", "cap_max_tokens": 4},
        },
        {
            "id": "home",
            "when": {"budget_soft_pct": ">=80", "third_party": True},
            "then": {"route_to": "inhouse"},
        },
    ]
