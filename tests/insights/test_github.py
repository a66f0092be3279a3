"""The GitHub webhook receiver over HTTP: signatures, replays, merged PRs, co-authors, reverts."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import urllib.parse
from typing import Any

import pytest

from tests.harness import GatewayThread
from tests.insights.conftest import GITHUB_SECRET_ENV, call, fresh_day, iso

SECRET = "It's a Secret to Everybody"
HOOK = "/admin/v1/webhooks/github"
_deliveries = itertools.count()


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GITHUB_SECRET_ENV, SECRET)


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(
    gateway: GatewayThread,
    event: str,
    payload: dict[str, Any],
    *,
    delivery: str | None = None,
    signature: str | None = "valid",
    form: bool = False,
) -> tuple[int, Any]:
    """POST a delivery as GitHub does (no admin key), signed unless told otherwise."""
    body = json.dumps(payload).encode()
    if form:
        body = urllib.parse.urlencode({"payload": body.decode()}).encode()
    headers = {
        "x-github-event": event,
        "x-github-delivery": delivery or f"delivery-{next(_deliveries)}",
        "content-type": "application/x-www-form-urlencoded" if form else "application/json",
    }
    if signature is not None:
        headers["x-hub-signature-256"] = sign(body) if signature == "valid" else signature
    return call(gateway, "POST", HOOK, raw=body, key=None, headers=headers)


def pull_request(
    number: int,
    *,
    repo: str = "octo/api",
    author: str = "ada-gh",
    merged: bool = True,
    title: str = "Add retries",
    body: str = "",
    merged_at: str | None = None,
    action: str = "closed",
) -> dict[str, Any]:
    return {
        "action": action,
        "number": number,
        "repository": {"full_name": repo},
        "pull_request": {
            "number": number,
            "title": title,
            "body": body,
            "user": {"login": author, "type": "User"},
            "merged": merged,
            "merged_at": merged_at or (iso(fresh_day()) if merged else None),
            "html_url": f"https://github.com/{repo}/pull/{number}",
            "additions": 30,
            "deletions": 12,
        },
    }


def stored(gateway: GatewayThread, outcome_id: str, merged_at: str) -> list[dict[str, Any]]:
    status, body = call(gateway, "GET", f"/admin/v1/outcomes?since={merged_at}&limit=1000")
    assert status == 200, body
    return [o for o in body["outcomes"] if o["id"] == outcome_id]


def test_no_secret_configured_is_a_clear_503(
    impact_gateway: GatewayThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(GITHUB_SECRET_ENV)
    status, body = deliver(impact_gateway, "ping", {"zen": "Keep it logically awesome."})
    assert status == 503
    assert GITHUB_SECRET_ENV in body["error"]["message"]
    assert body["error"]["code"] == "service_unavailable"


@pytest.mark.parametrize(
    "signature",
    [None, "sha256=" + "0" * 64, sign(b"another body"), "sha1=abc", sign(b"{}", "wrong secret")],
    ids=["missing", "zeros", "other-body", "sha1", "wrong-secret"],
)
def test_bad_or_missing_signatures_are_refused(
    impact_gateway: GatewayThread, signature: str | None
) -> None:
    status, body = deliver(impact_gateway, "pull_request", pull_request(1), signature=signature)
    assert status == 401
    assert (
        body["error"]["code"] == "invalid_signature"
        and "X-Hub-Signature-256" in (body["error"]["message"])
    )


def test_ping_and_untracked_events(impact_gateway: GatewayThread) -> None:
    assert deliver(impact_gateway, "ping", {"zen": "Design for failure."}) == (200, {"ok": True})
    status, body = deliver(impact_gateway, "push", {"ref": "refs/heads/main"})
    assert status == 202 and "push" in body["ignored"]
    status, body = deliver(impact_gateway, "pull_request", pull_request(2, action="opened"))
    assert status == 202 and "opened" in body["ignored"]


def test_a_closed_unmerged_pr_is_not_an_outcome(impact_gateway: GatewayThread) -> None:
    status, body = deliver(impact_gateway, "pull_request", pull_request(3, merged=False))
    assert status == 202 and body == {"ignored": "pull request closed without merging"}


def test_a_merged_pr_with_co_authors(impact_gateway: GatewayThread) -> None:
    merged_at = iso(fresh_day() + 3_600_000)
    trailers = (
        "Retries with jitter.\n\n"
        "Co-authored-by: Grace Hopper <GRACE@example.com>\n"
        "co-authored-by: Linus T <123+Linus@users.noreply.github.com>\n"
        "Co-authored-by: Bob <bob@elsewhere.org>\n"
    )
    pr = pull_request(10, body=trailers, merged_at=merged_at)
    status, body = deliver(impact_gateway, "pull_request", pr)
    assert status == 200, body
    assert body["ids"] == ["github:octo/api#10"]
    assert body["outcome"]["actors"] == ["ada", "grace", "linus"]
    assert body["outcome"]["unmapped"] == ["Bob <bob@elsewhere.org>"]

    [row] = stored(impact_gateway, "github:octo/api#10", merged_at)
    assert row["kind"] == "pr_merged" and row["source"] == "github"
    assert (row["org"], row["team"]) == ("octo", "payments")  # from `repos`
    assert row["size"] == 42 and iso(row["occurred_at_ms"]) == merged_at
    assert row["url"] == "https://github.com/octo/api/pull/10"
    assert row["extra"] == {"repo": "octo/api", "unmapped": ["Bob <bob@elsewhere.org>"]}


def test_a_replayed_delivery_counts_once(impact_gateway: GatewayThread) -> None:
    merged_at = iso(fresh_day())
    pr = pull_request(11, merged_at=merged_at)
    status, first = deliver(impact_gateway, "pull_request", pr, delivery="replay-1")
    assert status == 200 and first["accepted"] == 1
    assert deliver(impact_gateway, "pull_request", pr, delivery="replay-1") == (
        200,
        {"duplicate": True},
    )
    # A new delivery of the same PR (e.g. re-sent by hand) is idempotent on the outcome id.
    status, again = deliver(impact_gateway, "pull_request", pr, delivery="replay-2")
    assert status == 200 and (again["accepted"], again["duplicates"]) == (0, 1)
    assert len(stored(impact_gateway, "github:octo/api#11", merged_at)) == 1


def test_form_encoded_deliveries_are_accepted(impact_gateway: GatewayThread) -> None:
    status, body = deliver(impact_gateway, "pull_request", pull_request(12), form=True)
    assert status == 200 and body["ids"] == ["github:octo/api#12"]


def test_team_from_the_author_keys_and_unknown_authors(impact_gateway: GatewayThread) -> None:
    impact_gateway.runtime.key_store.create("hopper", "compilers", "octo")
    merged_at = iso(fresh_day())
    pr = pull_request(5, repo="octo/cc", author="hopper", merged_at=merged_at)
    status, body = deliver(impact_gateway, "pull_request", pr)
    assert status == 200 and body["outcome"]["team"] == "compilers"

    pr = pull_request(6, repo="octo/cc", author="stranger", merged_at=merged_at)
    status, body = deliver(impact_gateway, "pull_request", pr)
    assert status == 200 and body["outcome"]["actors"] == []
    [row] = stored(impact_gateway, "github:octo/cc#6", merged_at)
    assert row["team"] == "unknown" and row["extra"]["unmapped"] == ["stranger"]


def test_a_revert_pr_voids_the_original(impact_gateway: GatewayThread) -> None:
    day = fresh_day()
    deliver(impact_gateway, "pull_request", pull_request(20, merged_at=iso(day)))
    revert = pull_request(
        21,
        title='Revert "Add retries"',
        body="Reverts octo/api#20\n\nBroke checkout.",
        merged_at=iso(day + 86_400_000),
    )
    status, body = deliver(impact_gateway, "pull_request", revert)
    assert status == 200 and body["outcome"]["kind"] == "revert"
    [original] = stored(impact_gateway, "github:octo/api#20", iso(day))
    assert original["voided_by"] == "github:octo/api#21"
    [row] = stored(impact_gateway, "github:octo/api#21", iso(day))
    assert row["refs"] == ["github:octo/api#20"]


def test_malformed_payload_is_a_400(impact_gateway: GatewayThread) -> None:
    status, body = deliver(impact_gateway, "pull_request", {"action": "closed"})
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
