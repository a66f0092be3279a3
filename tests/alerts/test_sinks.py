"""The sinks against a real loopback receiver: headers, signatures, payloads, classification."""

from __future__ import annotations

import logging
import uuid

import aiohttp
import orjson
import pytest

from tests.alerts.conftest import HANG, Receiver, Reply, alert
from tollway.alerts import DeliveryError, LogSink, SlackSink, WebhookSink, verify_signature
from tollway.alerts.sinks import SharedSession

SECRET = "whsec-sink-test"


async def test_webhook_posts_signed_json(receiver: Receiver) -> None:
    url = receiver.script("/hook", 204)
    sink = WebhookSink("hook", url, secret=SECRET, clock=lambda: 1_750_000_000.7)
    sent = alert(id="alert-1")
    await sink.deliver(sent)
    await sink.aclose()

    (seen,) = receiver.requests("/hook")
    assert orjson.loads(seen.body) == sent
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-tollway-event"] == "alert"
    assert seen.headers["x-tollway-timestamp"] == "1750000000"
    assert uuid.UUID(seen.headers["x-tollway-delivery"]) == uuid.UUID(sink.delivery_id(sent))
    assert verify_signature(
        SECRET,
        seen.headers["x-tollway-timestamp"],
        seen.body,
        seen.headers["x-tollway-signature"],
        now=1_750_000_001,
    )


async def test_webhook_without_secret_sends_no_signature(receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        await WebhookSink("hook", receiver.url("/plain"), session=session).deliver(alert())
    (seen,) = receiver.requests("/plain")
    assert "x-tollway-signature" not in seen.headers


def test_delivery_id_is_stable_per_alert_and_sink() -> None:
    a, b = WebhookSink("a", "http://x.test"), WebhookSink("b", "http://x.test")
    assert a.delivery_id({"id": "1"}) == a.delivery_id({"id": "1"})
    assert a.delivery_id({"id": "1"}) != a.delivery_id({"id": "2"})
    assert a.delivery_id({"id": "1"}) != b.delivery_id({"id": "1"})


@pytest.mark.parametrize(
    ("reply", "retryable", "retry_after"),
    [
        (Reply(500), True, None),
        (Reply(503, {"Retry-After": "3"}), True, 3.0),
        (Reply(429, {"Retry-After": "1.5"}), True, 1.5),
        (Reply(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), True, None),
        (Reply(408), True, None),
        (Reply(500, {"Retry-After": "3"}), True, None),  # only honoured on 429/503
        (Reply(400), False, None),
        (Reply(404), False, None),
        (Reply(302, {"Location": "http://elsewhere.test/"}), False, None),
    ],
)
async def test_http_answers_are_classified(
    receiver: Receiver, reply: Reply, retryable: bool, retry_after: float | None
) -> None:
    sink = WebhookSink("hook", receiver.script(f"/status/{reply.status}", reply))
    with pytest.raises(DeliveryError) as caught:
        await sink.deliver(alert())
    await sink.aclose()
    assert caught.value.status == reply.status
    assert caught.value.retryable is retryable
    assert caught.value.retry_after_s == retry_after
    assert str(reply.status) in str(caught.value)


async def test_a_hanging_receiver_times_out_as_retryable(receiver: Receiver) -> None:
    sink = WebhookSink("hook", receiver.script("/hang", HANG), timeout_s=0.2)
    with pytest.raises(DeliveryError, match="no answer within") as caught:
        await sink.deliver(alert())
    await sink.aclose()
    assert caught.value.retryable


async def test_connection_refused_is_retryable() -> None:
    from tests.harness import free_port

    sink = WebhookSink("hook", f"http://127.0.0.1:{free_port()}/nobody")
    with pytest.raises(DeliveryError) as caught:
        await sink.deliver(alert())
    await sink.aclose()
    assert caught.value.retryable and caught.value.status is None


async def test_slack_gets_text_and_blocks(receiver: Receiver) -> None:
    sink = SlackSink("slack", receiver.script("/slack", 200))
    await sink.deliver(alert(id="a-7", url="https://tollway.test/insights/a-7"))
    await sink.aclose()
    (seen,) = receiver.requests("/slack")
    payload = orjson.loads(seen.body)
    assert set(payload) == {"text", "blocks"}
    assert payload["text"] == (
        "[WARNING] Spend spike on payments: Team payments spent 4.2x its hourly baseline."
    )
    assert [b["type"] for b in payload["blocks"]] == [
        "header",
        "section",
        "section",
        "actions",
        "context",
    ]
    assert payload["blocks"][0]["text"] == {"type": "plain_text", "text": "Spend spike on payments"}
    fields = [f["text"] for f in payload["blocks"][2]["fields"]]
    assert fields == ["*team*\nacme/payments", "*ratio*\n4.2", "*window*\n1h"]
    assert payload["blocks"][3]["elements"][0]["url"] == "https://tollway.test/insights/a-7"
    assert "x-tollway-signature" not in seen.headers


async def test_slack_errors_are_classified_like_webhooks(receiver: Receiver) -> None:
    sink = SlackSink("slack", receiver.script("/slack-gone", 410))
    with pytest.raises(DeliveryError) as caught:
        await sink.deliver(alert())
    await sink.aclose()
    assert not caught.value.retryable


async def test_log_sink_writes_one_json_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tollway.alerts"):
        await LogSink("log").deliver(alert(id="a-9", severity="critical"))
    (record,) = [r for r in caplog.records if r.name == "tollway.alerts"]
    assert record.levelno == logging.ERROR
    line = record.getMessage()
    assert "\n" not in line
    assert orjson.loads(line) == {
        "event": "alert",
        "sink": "log",
        **alert(id="a-9", severity="critical"),
    }


async def test_an_owned_session_is_created_lazily_and_closed(receiver: Receiver) -> None:
    shared = SharedSession()
    sink = WebhookSink("hook", receiver.url("/lazy"), session=shared)
    await sink.deliver(alert())
    session = shared.get()
    await sink.aclose()
    assert session.closed
    with pytest.raises(DeliveryError, match="closed"):
        await sink.deliver(alert())


async def test_a_callers_session_is_left_open(receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        sink = WebhookSink("hook", receiver.url("/borrowed"), session=session)
        await sink.deliver(alert())
        await sink.aclose()
        assert not session.closed
