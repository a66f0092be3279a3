"""The admin API: keys, usage queries, request records, OpenAPI, and its auth."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest

from tests.harness import ADMIN_KEY, GatewayThread


def call(
    gateway: GatewayThread, method: str, path: str, body: Any = None, key: str = ADMIN_KEY
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        gateway.base_url + path,
        data=data,
        method=method,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_openapi_document_is_served(gateway: GatewayThread) -> None:
    with urllib.request.urlopen(gateway.base_url + "/admin/v1/openapi.json", timeout=5) as resp:
        spec = json.loads(resp.read())
    assert spec["info"]["title"] == "Tollway admin API"
    assert {"/admin/v1/keys", "/admin/v1/usage", "/admin/v1/requests/{request_id}"} <= set(
        spec["paths"]
    )


def test_admin_routes_need_an_admin_key(gateway: GatewayThread, user_key: str) -> None:
    status, body = call(gateway, "GET", "/admin/v1/keys", key="tw-wrong")
    assert status == 401 and body["error"]["type"] == "invalid_request_error"
    status, body = call(gateway, "GET", "/admin/v1/keys", key=user_key)
    assert status == 403 and "admin key" in body["error"]["message"]


def test_key_lifecycle_through_the_api(gateway: GatewayThread) -> None:
    status, created = call(
        gateway,
        "POST",
        "/admin/v1/keys",
        {"user": "grace", "team": "compilers", "org": "acme", "name": "ci", "expires_at": "30d"},
    )
    assert status == 201 and created["key"].startswith("tw-")
    assert created["expires_at_ms"] is not None
    client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=created["key"], max_retries=0)
    client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])

    status, listed = call(gateway, "GET", "/admin/v1/keys?org=acme&team=compilers")
    assert status == 200 and [k["key_id"] for k in listed] == [created["key_id"]]
    assert all("key" not in k for k in listed), "secrets are never listed"

    status, updated = call(
        gateway, "PATCH", f"/admin/v1/keys/{created['key_id']}", {"expires_at": None}
    )
    assert status == 200 and updated["expires_at_ms"] is None
    status, body = call(gateway, "PATCH", "/admin/v1/keys/key_nope", {"expires_at": "1d"})
    assert status == 404

    status, revoked = call(gateway, "DELETE", f"/admin/v1/keys/{created['key_id']}")
    assert status == 200 and revoked["revoked_at_ms"] is not None
    status, body = call(gateway, "DELETE", f"/admin/v1/keys/{created['key_id']}")
    assert status == 404 and body["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"team": "t", "org": "o"}, "user"),
        ({"user": "u", "team": "t", "role": "root"}, "role"),
        ({"user": "u", "team": "t", "expires_at": "soon"}, "expires_at"),
    ],
)
def test_bad_key_requests_name_the_field(gateway: GatewayThread, body: dict, field: str) -> None:
    status, answer = call(gateway, "POST", "/admin/v1/keys", body)
    assert status == 400 and field in answer["error"]["message"]


def test_usage_grouped_and_request_lookup(gateway: GatewayThread) -> None:
    key, _ = gateway.runtime.key_store.create("lin", "search", "globex")
    client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)
    ids = []
    for model in ("gpt-test", "gpt-test", "flaky"):
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "usage sim:tokens=4"}]
        )
        ids.append(raw.headers["x-tollway-request-id"])

    status, report = call(
        gateway, "GET", "/admin/v1/usage?group_by=team,model&org=globex&since=1d&granularity=hour"
    )
    assert status == 200
    rows = {(r["team"], r["model"]): r for r in report["rows"]}
    assert rows[("search", "gpt-test")]["requests"] == 2
    assert rows[("search", "gpt-test")]["output_tokens"] == 8
    assert rows[("search", "flaky-primary")]["requests"] == 1
    assert all("bucket_start_ms" in r for r in report["rows"])

    status, record = call(gateway, "GET", f"/admin/v1/requests/{ids[0]}")
    assert status == 200 and record["request_id"] == ids[0] and record["org"] == "globex"
    status, _ = call(gateway, "GET", "/admin/v1/requests/req_missing")
    assert status == 404

    status, body = call(gateway, "GET", "/admin/v1/usage?group_by=planet")
    assert status == 400 and "planet" in body["error"]["message"]
    status, body = call(gateway, "GET", "/admin/v1/usage?since=yesterday-ish")
    assert status == 400 and body["error"]["param"] == "since"
