"""The GitHub webhook receiver: signed deliveries of merged pull requests become outcomes.

A delivery is trusted only if `X-Hub-Signature-256` is the HMAC-SHA256 of the raw body
under the shared secret. A merged PR becomes a `pr_merged` outcome (or `revert` when it
reverts another PR) with id `github:<owner/repo>#<number>`; its actors are the author
and the `Co-authored-by:` trailers of the PR body, mapped to gateway users through
`insights.github.identities`. Who cannot be mapped is kept in `extra.unmapped` and not
attributed; a PR with nobody mapped is still stored (listed, never attributed).
Delivery ids are remembered in the `kv` table, so a redelivery counts nothing twice.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from tollway.insights.config import GitHubConfig
from tollway.insights.outcome_events import IngestResult, parse_time_ms
from tollway.ledger.outcomes import Outcome, insert_outcomes
from tollway.ledger.schema import api_keys, kv

_CO_AUTHOR = re.compile(r"^\s*co-authored-by:\s*(.*?)\s*<([^<>\s]+)>\s*$", re.I | re.M)
_REVERTS = re.compile(r"\bReverts ([\w.-]+/[\w.-]+)#(\d+)\b")
_NOREPLY = re.compile(r"^(?:\d+\+)?([^@]+)@users\.noreply\.github\.com$", re.I)
_DELIVERY_KEY = "github.delivery."


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is `sha256=<hex HMAC-SHA256 of body>` (compared in constant time)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def decode_payload(body: bytes, content_type: str) -> dict[str, Any]:
    """The delivery's JSON, sent as `application/json` or as a form's `payload` field."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        body = form.get("payload", [""])[0].encode()
    payload = orjson.loads(body)
    if not isinstance(payload, dict):
        raise ValueError("the payload is not a JSON object")
    return payload


@dataclass(frozen=True, slots=True)
class Ignored:
    """A delivery that carries no outcome, and why."""

    reason: str


def to_outcome(
    event: str,
    payload: Mapping[str, Any],
    config: GitHubConfig,
    team_of: Callable[[str], str | None],
) -> Outcome | Ignored:
    """The outcome a `pull_request` delivery describes, or why there is none.

    `team_of(user)` is the team of a gateway user (from its keys), used when the
    repository is not mapped to a team in the config. Raises KeyError/TypeError/ValueError
    on a malformed payload."""
    if event != "pull_request":
        return Ignored(f"event '{event}' is not tracked")
    action = payload.get("action")
    pr = payload["pull_request"]
    if action != "closed":
        return Ignored(f"pull_request action '{action}' is not tracked")
    if not pr.get("merged"):
        return Ignored("pull request closed without merging")
    repo = str(payload["repository"]["full_name"])
    title = str(pr.get("title") or "")
    body = str(pr.get("body") or "")
    actors, unmapped = _actors(str(pr["user"]["login"]), body, config)
    team = config.repos.get(repo) or next((t for t in map(team_of, actors) if t), None)
    kind = "pr_merged"
    refs: tuple[str, ...] = ()
    reverted = _REVERTS.search(body)
    if title.startswith('Revert "') and reverted:
        kind, refs = "revert", (f"github:{reverted.group(1)}#{reverted.group(2)}",)
    extra: dict[str, Any] = {"repo": repo}
    if unmapped:
        extra["unmapped"] = unmapped
    return Outcome(
        outcome_id=f"github:{repo}#{int(pr['number'])}",
        kind=kind,
        org=config.org,
        team=team or "unknown",
        actors=actors,
        occurred_at_ms=parse_time_ms(pr["merged_at"]),
        source="github",
        size=int(pr.get("additions") or 0) + int(pr.get("deletions") or 0),
        url=pr.get("html_url"),
        title=title[:500] or None,
        refs=refs,
        extra=extra,
    )


def _actors(author: str, body: str, config: GitHubConfig) -> tuple[tuple[str, ...], list[str]]:
    """Gateway users of the author and the co-authors, and who could not be mapped."""
    identities = {k.lower(): v for k, v in config.identities.items()}
    mapped: dict[str, None] = {}
    unmapped: list[str] = []
    user = identities.get(author.lower())
    if user:
        mapped[user] = None
    else:
        unmapped.append(author)
    for name, email in _CO_AUTHOR.findall(body):
        noreply = _NOREPLY.match(email)
        keys = [email.lower(), *([noreply.group(1).lower()] if noreply else [])]
        user = next((identities[k] for k in keys if k in identities), None)
        if user:
            mapped[user] = None
        else:
            unmapped.append(f"{name} <{email}>".strip())
    return tuple(mapped), list(dict.fromkeys(unmapped))


def team_lookup(engine: Engine, org: str) -> Callable[[str], str | None]:
    """`user -> team` from the user's newest active key in `org` (else its newest key)."""

    def team_of(user: str) -> str | None:
        query = (
            select(api_keys.c.team)
            .where(api_keys.c.user == user, api_keys.c.org == org)
            .order_by(api_keys.c.revoked_at_ms.is_not(None), api_keys.c.created_at_ms.desc())
            .limit(1)
        )
        with engine.connect() as connection:
            return connection.execute(query).scalar_one_or_none()

    return team_of


def seen(engine: Engine, delivery_id: str) -> bool:
    """Whether this delivery was stored already."""
    with engine.connect() as connection:
        found = connection.execute(
            select(kv.c.key).where(kv.c.key == _DELIVERY_KEY + delivery_id)
        ).first()
    return found is not None


def store(
    engine: Engine,
    outcome: Outcome,
    delivery_id: str | None,
    *,
    now_ms: int,
    quality_window_days: int,
) -> IngestResult | None:
    """Store the outcome and remember the delivery in one transaction; None if the
    delivery was stored already (e.g. by a concurrent redelivery)."""
    try:
        with engine.begin() as connection:
            if delivery_id:
                key = _DELIVERY_KEY + delivery_id
                if connection.execute(select(kv.c.key).where(kv.c.key == key)).first():
                    return None
                value = orjson.dumps({"outcome_id": outcome.outcome_id, "at_ms": now_ms})
                connection.execute(kv.insert().values(key=key, value=value.decode()))
            fresh = insert_outcomes(
                connection,
                [outcome],
                received_at_ms=now_ms,
                quality_window_days=quality_window_days,
            )
    except IntegrityError:
        # The same delivery (or PR) was stored by a concurrent request.
        return None if delivery_id else IngestResult(0, 1, [])
    return IngestResult(len(fresh), 1 - len(fresh), fresh)
