"""Alert sinks: a structured log line, a signed JSON webhook, a Slack incoming webhook.

A sink has a `name` and one coroutine, `deliver(alert)`, which returns once the
alert is delivered and raises `DeliveryError` otherwise; `retryable` tells the
dispatcher whether another attempt could succeed. The HTTP sinks classify
answers alike: 2xx is delivered; 408, 429, 5xx, connection errors and timeouts
are retryable (a `Retry-After` in seconds on 429/503 rides along on the
error); any other status, redirects included, is not.

The webhook sink POSTs the alert as JSON with these headers::

    content-type: application/json
    x-tollway-event: alert
    x-tollway-delivery: <UUID, the same on every retry of one alert to one sink>
    x-tollway-timestamp: <Unix seconds when this attempt was sent>
    x-tollway-signature: sha256=<hex HMAC-SHA256 of f"{timestamp}.{body}">  (with a secret)

The delivery id derives from the alert's `id` and the sink name (the dispatcher
gives every alert an id), so receivers can deduplicate retries by it. The
signature scheme is described in `tollway.alerts.signing`; receivers can check
it with `verify_signature`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import aiohttp
import orjson

from tollway.alerts.retry import RetryPolicy
from tollway.alerts.signing import sign
from tollway.alerts.slack import slack_payload

log = logging.getLogger("tollway.alerts")

_DELIVERY_NAMESPACE = uuid.UUID("5f0c6a0e-4a56-4c3e-9a43-7d1d8f0b2a61")
_DETAIL_LIMIT = 1024  # bytes of an error answer kept for the failure message
_LOG_LEVELS = {"critical": logging.ERROR, "error": logging.ERROR, "info": logging.INFO}


class DeliveryError(Exception):
    """A failed delivery attempt; `retryable` says whether trying again may succeed."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after_s: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.status = status


class AlertSink(Protocol):
    """Somewhere alerts go. `deliver` must bound its own time (e.g. an HTTP timeout)."""

    name: str

    async def deliver(self, alert: Mapping[str, Any]) -> None:
        """Deliver one alert, or raise `DeliveryError`."""
        ...


class SharedSession:
    """The aiohttp session the HTTP sinks share: the caller's, or one this object creates
    on first use and closes in `close()` (a caller's session is left to its owner)."""

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._owned = session is None
        self._closed = False

    def get(self) -> aiohttp.ClientSession:
        """The session, created on first use (inside the running loop)."""
        if self._closed:
            raise DeliveryError("the alert sinks' HTTP session is closed", retryable=False)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the session if this object created it; later deliveries fail."""
        self._closed = True
        if self._owned and self._session is not None:
            await self._session.close()
        self._session = None


def encode(alert: Mapping[str, Any]) -> bytes:
    """The alert as JSON; values orjson cannot encode natively become strings."""
    try:
        return orjson.dumps(dict(alert), default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:  # orjson.JSONEncodeError, e.g. a circular structure
        raise DeliveryError(f"alert is not JSON-serialisable: {exc}", retryable=False) from exc


class LogSink:
    """One JSON line per alert on the `tollway.alerts` logger, at a level from its severity."""

    def __init__(self, name: str = "log", *, retry: RetryPolicy | None = None) -> None:
        self.name = name
        self.retry = retry or RetryPolicy(max_attempts=1)

    async def deliver(self, alert: Mapping[str, Any]) -> None:
        level = _LOG_LEVELS.get(str(alert.get("severity", "")).lower(), logging.WARNING)
        log.log(level, "%s", encode({"event": "alert", "sink": self.name, **alert}).decode())

    async def aclose(self) -> None:
        """Nothing to release."""


class WebhookSink:
    """POSTs each alert as JSON to `url`, signed with HMAC-SHA256 when a secret is set."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        session: SharedSession | aiohttp.ClientSession | None = None,
        secret: str | None = None,
        timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.url = url
        self.retry = retry or RetryPolicy()
        self._session = _shared(session)
        self._secret = secret
        self._timeout_s = timeout_s
        self._clock = clock

    def delivery_id(self, alert: Mapping[str, Any]) -> str:
        """The `x-tollway-delivery` id: stable per (alert id, sink); random without an id."""
        alert_id = alert.get("id")
        if not alert_id:
            return str(uuid.uuid4())
        return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{self.name}\x00{alert_id}"))

    async def deliver(self, alert: Mapping[str, Any]) -> None:
        body = encode(alert)
        # Stamped per attempt: a retry after a long backoff must not look like a replay.
        timestamp = str(int(self._clock()))
        headers = {
            "content-type": "application/json",
            "user-agent": "tollway-alerts",
            "x-tollway-event": "alert",
            "x-tollway-delivery": self.delivery_id(alert),
            "x-tollway-timestamp": timestamp,
        }
        if self._secret:
            headers["x-tollway-signature"] = sign(self._secret, timestamp, body)
        await post_json(self._session, self.url, body, headers, self._timeout_s)

    async def aclose(self) -> None:
        """Close the HTTP session if the sinks own it."""
        await self._session.close()


class SlackSink:
    """POSTs each alert to a Slack incoming webhook as `text` plus Block Kit `blocks`."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        session: SharedSession | aiohttp.ClientSession | None = None,
        timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.retry = retry or RetryPolicy()
        self._session = _shared(session)
        self._timeout_s = timeout_s

    async def deliver(self, alert: Mapping[str, Any]) -> None:
        body = orjson.dumps(slack_payload(alert))
        headers = {"content-type": "application/json", "user-agent": "tollway-alerts"}
        await post_json(self._session, self.url, body, headers, self._timeout_s)

    async def aclose(self) -> None:
        """Close the HTTP session if the sinks own it."""
        await self._session.close()


def _shared(session: SharedSession | aiohttp.ClientSession | None) -> SharedSession:
    return session if isinstance(session, SharedSession) else SharedSession(session)


async def post_json(
    session: SharedSession, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
) -> None:
    """POST `body`; return on 2xx, else raise a classified `DeliveryError`."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        # Redirects are not followed: clients turn a redirected POST into a GET.
        async with session.get().post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            # Read (a bounded part of) the answer so the connection can be reused.
            detail = await response.content.read(_DETAIL_LIMIT)
            if 200 <= response.status < 300:
                return
            raise status_error(response.status, response.headers, detail)
    except TimeoutError as exc:
        raise DeliveryError(f"no answer within {timeout_s:g}s", retryable=True) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc


def status_error(status: int, headers: Mapping[str, str], detail: bytes = b"") -> DeliveryError:
    """The error for a non-2xx answer: 408, 429 and 5xx are retryable, the rest are not."""
    retryable = status in (408, 429) or status >= 500
    retry_after = _retry_after(headers.get("retry-after")) if status in (429, 503) else None
    text = " ".join(detail.decode("utf-8", "replace").split())[:200]
    if 300 <= status < 400:
        text = f"redirected to {headers.get('location', '?')}; configure the final URL"
    message = f"HTTP {status}" + (f": {text}" if text else "")
    return DeliveryError(message, retryable=retryable, retry_after_s=retry_after, status=status)


def _retry_after(value: str | None) -> float | None:
    # Only the delay-seconds form; an HTTP-date falls back to the computed backoff.
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None
