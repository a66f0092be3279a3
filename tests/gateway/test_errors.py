"""Every bad input and upstream failure gets the right status and an error in the caller's shape."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import sim_control
from tests.gateway.test_openai_sdk import ledger_row
from tests.harness import GatewayThread


def post(
    url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def openai_error(status: int, body: dict[str, Any]) -> dict[str, Any]:
    assert set(body) == {"error"}, body
    assert {"message", "type", "param", "code"} <= set(body["error"])
    return body["error"]


def anthropic_error(body: dict[str, Any]) -> dict[str, Any]:
    assert body["type"] == "error" and {"type", "message"} <= set(body["error"]), body
    return body["error"]


@pytest.mark.parametrize(
    ("payload", "status", "param"),
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (b'{"messages": []}', 400, "model"),
        (b'{"model": "gpt-test"}', 400, "messages"),
        (b'{"model": "gpt-test", "messages": "hi"}', 400, "messages"),
        (b'{"model": "gpt-test", "messages": [], "stream": "yes"}', 400, "stream"),
        (b'{"model": "gpt-test", "messages": [], "max_tokens": -1}', 400, "max_tokens"),
        (b'{"model": "no-such-model", "messages": []}', 404, "model"),
    ],
)
def test_openai_bad_requests(
    gateway: GatewayThread, user_key: str, payload: bytes, status: int, param: str | None
) -> None:
    got, body, headers = post(
        gateway.base_url + "/v1/chat/completions",
        payload,
        {"authorization": f"Bearer {user_key}", "content-type": "application/json"},
    )
    assert got == status
    error = openai_error(got, body)
    assert error["param"] == param
    assert "x-tollway-request-id" in {k.lower() for k in headers}


@pytest.mark.parametrize(
    ("payload", "status", "kind"),
    [
        (b"{oops", 400, "invalid_request_error"),
        (b'{"model": "claude-test", "messages": []}', 400, "invalid_request_error"),
        (b'{"model": "nope", "max_tokens": 5, "messages": []}', 404, "not_found_error"),
    ],
)
def test_anthropic_bad_requests(
    gateway: GatewayThread, user_key: str, payload: bytes, status: int, kind: str
) -> None:
    got, body, _ = post(
        gateway.base_url + "/v1/messages",
        payload,
        {"x-api-key": user_key, "anthropic-version": "2023-06-01"},
    )
    assert got == status
    assert anthropic_error(body)["type"] == kind


def test_bad_keys_are_rejected_in_each_dialect(gateway: GatewayThread) -> None:
    bad = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="tw-nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="Invalid API key"):
        bad.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "x"}])
    bad_claude = anthropic.Anthropic(base_url=gateway.base_url, api_key="tw-nope", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        bad_claude.messages.create(
            model="claude-test", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    status, body, _ = post(gateway.base_url + "/v1/chat/completions", b"{}", {})
    assert status == 401 and "Missing API key" in openai_error(status, body)["message"]


def test_revoked_and_expired_keys(gateway: GatewayThread) -> None:
    store = gateway.runtime.key_store
    revoked, info = store.create("ada", "payments", "acme")
    client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=revoked, max_retries=0)
    client.models.list()  # noqa: the key works
    messages = [{"role": "user", "content": "x"}]
    client.chat.completions.create(model="gpt-test", messages=messages)
    store.revoke(info.key_id)
    deadline = time.monotonic() + 5
    while True:  # the gateway's key cache refreshes within about a second
        try:
            client.chat.completions.create(model="gpt-test", messages=messages)
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "revoked key still accepted"
        time.sleep(0.1)

    expired, _ = store.create("ada", "payments", "acme", expires_at_ms=int(time.time() * 1000) - 1)
    client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=expired, max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="expired"):
        client.chat.completions.create(model="gpt-test", messages=messages)


def test_body_over_limit(gateway: GatewayThread, oai: openai.OpenAI) -> None:
    huge = "x" * (65 * 1024)
    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": huge}])
    assert info.value.status_code == 413


def test_wrong_method_and_unknown_path(gateway: GatewayThread, user_key: str) -> None:
    request = urllib.request.Request(gateway.base_url + "/v1/chat/completions", method="GET")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 405
    openai_error(405, json.loads(info.value.read()))
    status, body, _ = post(gateway.base_url + "/v1/nothing", b"{}", {"anthropic-version": "x"})
    assert status == 404 and anthropic_error(body)["type"] == "not_found_error"


def test_upstream_500_and_timeout_without_fallback(
    gateway: GatewayThread, sim: Any, oai: openai.OpenAI
) -> None:
    messages = [{"role": "user", "content": "x"}]
    sim_control(
        sim,
        "POST",
        "/_sim/faults",
        {"rules": [{"model": "fragile-only", "mode": "status", "status": 500, "times": 1}]},
    )
    with pytest.raises(openai.InternalServerError) as info:
        oai.chat.completions.create(model="fragile", messages=messages)
    request_id = info.value.response.headers["x-tollway-request-id"]
    assert "sim-both" in info.value.message
    row = ledger_row(gateway, request_id)
    assert row["status"] == 500 and row["error_class"] == "UpstreamStatus"
    assert row["input_tokens"] == 0 and row["list_cost_pusd"] == 0

    sim_control(
        sim,
        "POST",
        "/_sim/faults",
        {"rules": [{"model": "fragile-only", "mode": "timeout", "times": 1, "delay_s": 5}]},
    )
    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(model="fragile", messages=messages)
    assert info.value.status_code == 504


def test_upstream_client_error_is_passed_through(
    gateway: GatewayThread, sim: Any, claude: anthropic.Anthropic
) -> None:
    sim_control(
        sim,
        "POST",
        "/_sim/faults",
        {"rules": [{"model": "claude-test", "mode": "status", "status": 400, "times": 1}]},
    )
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(
            model="claude-test", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    stats = sim_control(sim, "GET", "/_sim/stats")
    assert stats, "the simulator answered the request itself"


def test_clients_cannot_claim_the_tags_that_mark_sanctioned_automation(
    gateway: GatewayThread, user_key: str
) -> None:
    body = b'{"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}'
    headers = {"authorization": f"Bearer {user_key}", "content-type": "application/json"}
    got, reply, _ = post(
        gateway.base_url + "/v1/chat/completions",
        body,
        {**headers, "x-tollway-tags": "task:docs,automation"},
    )
    assert got == 400
    assert "automation can only be set on a key" in openai_error(got, reply)["message"]
