"""Prompt governance through the gateway: secrets stay in-house, logs are redacted,
kept per org/team mode, purged after retention, and only their admins may read them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.admin.test_api import call
from tests.gateway.test_openai_sdk import ledger_row
from tests.harness import GatewayThread, settings_for, vendor_and_in_house
from tollway.providers.simulated import SimulatedServer

SECRET = "AKIAIOSFODNN7EXAMPLE"
PROMPT = f"Why does boto3 reject my key? aws_access_key_id = {SECRET} sim:tokens=6"


def config(sim: SimulatedServer) -> dict[str, Any]:
    return {
        **vendor_and_in_house(sim),
        "steering": [
            {
                "id": "secrets-stay-home",
                "when": {"data_class": "secret", "third_party": True},
                "then": {"route_to": "inhouse"},
            },
        ],
        "prompt_logging": {
            "default": "off",
            "retention_days": 1,
            "orgs": {"acme": "metadata"},
            "teams": {"acme/secure": "full"},
        },
    }


@pytest.fixture(scope="module")
def gov_gateway(
    sim: SimulatedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayThread]:
    server = GatewayThread(settings_for(config(sim), tmp_path_factory.mktemp("gov"))).start()
    yield server
    server.stop()


def send(gateway: GatewayThread, org: str, team: str, prompt: str = PROMPT) -> str:
    key, _ = gateway.runtime.key_store.create("sam", team, org)
    oai = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": prompt}]
    )
    return raw.headers["x-tollway-request-id"]


def logged(gateway: GatewayThread, request_id: str) -> dict[str, Any] | None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        entry = gateway.runtime.prompt_logs.get(request_id)
        if entry is not None:
            return entry  # type: ignore[no-any-return]
        time.sleep(0.05)
    return None


def test_secrets_are_steered_in_house_and_redacted_in_logs(gov_gateway: GatewayThread) -> None:
    request_id = send(gov_gateway, "acme", "secure")
    row = ledger_row(gov_gateway, request_id)
    assert row["served_model"] == "inhouse-coder" and row["route_rule"] == "secrets-stay-home"
    entry = logged(gov_gateway, request_id)
    assert entry is not None and entry["mode"] == "full" and entry["data_class"] == "secret"
    assert SECRET not in entry["prompt"] and "[REDACTED:" in entry["prompt"]
    assert "boto3" in entry["prompt"] and entry["response"]
    assert entry["findings"]

    clean = send(gov_gateway, "acme", "secure", "How do I sort a list in Python?")
    assert ledger_row(gov_gateway, clean)["served_model"] == "gpt-test"


def test_modes_per_org_and_team(gov_gateway: GatewayThread) -> None:
    metadata = logged(gov_gateway, send(gov_gateway, "acme", "web"))
    assert metadata is not None and metadata["mode"] == "metadata"
    assert metadata["prompt"] is None and metadata["response"] is None
    assert metadata["data_class"] == "secret"  # classified, never stored
    off = send(gov_gateway, "beta", "web")
    time.sleep(0.5)
    assert gov_gateway.runtime.prompt_logs.get(off) is None


def test_only_the_prompts_admins_may_read_and_reads_are_audited(
    gov_gateway: GatewayThread,
) -> None:
    request_id = send(gov_gateway, "acme", "secure")
    assert logged(gov_gateway, request_id) is not None
    store = gov_gateway.runtime.key_store
    team_admin, _ = store.create("tia", "secure", "acme", role="team_admin")
    other_team, _ = store.create("oli", "web", "acme", role="team_admin")
    org_admin, _ = store.create("ora", "web", "acme", role="org_admin")
    outsider, _ = store.create("ozzy", "secure", "beta", role="org_admin")
    user, _ = store.create("uma", "secure", "acme")
    path = f"/admin/v1/prompts/{request_id}"
    status, body = call(gov_gateway, "GET", path, key=team_admin)
    assert status == 200 and SECRET not in body["prompt"]
    assert call(gov_gateway, "GET", path, key=org_admin)[0] == 200
    assert call(gov_gateway, "GET", path, key=other_team)[0] == 403
    assert call(gov_gateway, "GET", path, key=outsider)[0] == 403
    assert call(gov_gateway, "GET", path, key=user)[0] == 403
    status, reads = call(gov_gateway, "GET", path + "/reads")
    assert status == 200
    assert [r["granted"] for r in reads] == [False, False, True, True]  # newest first


def test_logs_are_purged_after_retention(gov_gateway: GatewayThread) -> None:
    request_id = send(gov_gateway, "acme", "secure")
    assert logged(gov_gateway, request_id) is not None
    store = gov_gateway.runtime.prompt_logs
    assert store.purge(int(time.time() * 1000)) == 0  # within the day of retention
    assert store.purge(int(time.time() * 1000) + 86_400_000 + 1) >= 1
    assert store.get(request_id) is None
    status, _ = call(gov_gateway, "GET", f"/admin/v1/prompts/{request_id}")
    assert status == 404
