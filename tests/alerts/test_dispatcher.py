"""The dispatcher: non-blocking submit, retries with backoff, sink isolation, draining."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any

import pytest

from tests.alerts.conftest import FAST, HANG, Receiver, RecordingSleep, Reply, Results, alert
from tollway.alerts import (
    AlertDispatcher,
    DeliveryError,
    DeliveryStats,
    RetryPolicy,
    SinkConfig,
    WebhookSink,
    build_sinks,
    verify_signature,
)

SECRET = "whsec-dispatch"


def webhook(name: str, url: str, **kwargs: Any) -> WebhookSink:
    return WebhookSink(name, url, retry=kwargs.pop("retry", FAST), **kwargs)


async def test_signed_alert_is_delivered_and_reported(receiver: Receiver, results: Results) -> None:
    sinks = build_sinks([SinkConfig(kind="webhook", url=receiver.url("/hook"), secret=SECRET)])
    dispatcher = AlertDispatcher(sinks, on_result=results, clock=lambda: 1_750_000_000.0)
    dispatcher.start()
    assert dispatcher.submit(alert(id="spike-1"))
    (result,) = await results.wait(1)
    await dispatcher.close()

    assert (result.alert_id, result.sink, result.ok, result.attempts) == (
        "spike-1",
        "webhook",
        True,
        1,
    )
    assert result.error is None and result.delivered_at_ms == 1_750_000_000_000
    (seen,) = receiver.requests("/hook")
    headers = seen.headers
    assert verify_signature(
        SECRET, headers["x-tollway-timestamp"], seen.body, headers["x-tollway-signature"]
    )
    assert dispatcher.stats == DeliveryStats(submitted=1, delivered=1)


async def test_alerts_without_an_id_get_one(receiver: Receiver, results: Results) -> None:
    dispatcher = AlertDispatcher([webhook("hook", receiver.url("/anon"))], on_result=results)
    dispatcher.start()
    dispatcher.submit(alert())
    (result,) = await results.wait(1)
    await dispatcher.close()
    (seen,) = receiver.requests("/anon")
    assert result.alert_id and f'"id":"{result.alert_id}"'.encode() in seen.body


async def test_server_errors_are_retried_with_one_delivery_id(
    receiver: Receiver, results: Results, recorded_sleep: RecordingSleep
) -> None:
    url = receiver.script("/flaky", 500, 500, 200)
    dispatcher = AlertDispatcher(
        [webhook("hook", url, secret=SECRET)],
        on_result=results,
        sleep=recorded_sleep,
        rng=random.Random(7),
    )
    dispatcher.start()
    dispatcher.submit(alert(id="a-1"))
    (result,) = await results.wait(1)
    await dispatcher.close()

    assert result.ok and result.attempts == 3
    seen = receiver.requests("/flaky")
    assert len(seen) == 3
    assert len({s.headers["x-tollway-delivery"] for s in seen}) == 1
    assert dispatcher.stats == DeliveryStats(submitted=1, delivered=1, retries=2)
    # Exponential with jitter in [base/2, base]: 1 ms then 2 ms bases.
    first, second = recorded_sleep.delays
    assert 0.0005 <= first <= 0.001 and 0.001 <= second <= 0.002


async def test_client_errors_are_not_retried(
    receiver: Receiver, results: Results, recorded_sleep: RecordingSleep
) -> None:
    url = receiver.script("/bad", 400)
    dispatcher = AlertDispatcher([webhook("hook", url)], on_result=results, sleep=recorded_sleep)
    dispatcher.start()
    dispatcher.submit(alert(id="a-2"))
    (result,) = await results.wait(1)
    await dispatcher.close()
    assert not result.ok and result.attempts == 1 and "HTTP 400" in (result.error or "")
    assert result.delivered_at_ms is None
    assert len(receiver.requests("/bad")) == 1 and recorded_sleep.delays == []
    assert dispatcher.stats == DeliveryStats(submitted=1, failed=1)


async def test_retry_after_is_honoured_and_capped(
    receiver: Receiver, results: Results, recorded_sleep: RecordingSleep
) -> None:
    polite = receiver.script("/polite", Reply(429, {"Retry-After": "7"}), 200)
    greedy = receiver.script("/greedy", Reply(503, {"Retry-After": "3600"}), 200)
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=20)
    dispatcher = AlertDispatcher(
        [webhook("polite", polite, retry=policy)], on_result=results, sleep=recorded_sleep
    )
    dispatcher.start()
    dispatcher.submit(alert())
    await results.wait(1)
    await dispatcher.close()
    other = AlertDispatcher(
        [webhook("greedy", greedy, retry=policy)], on_result=results, sleep=recorded_sleep
    )
    other.start()
    other.submit(alert())
    await results.wait(2)
    await other.close()

    assert recorded_sleep.delays == [7.0, 20.0]
    assert [(r.sink, r.ok, r.attempts) for r in results.items] == [
        ("polite", True, 2),
        ("greedy", True, 2),
    ]


async def test_a_hanging_receiver_times_out_then_is_retried(
    receiver: Receiver, results: Results
) -> None:
    url = receiver.script("/slow", HANG, 200)
    dispatcher = AlertDispatcher([webhook("hook", url, timeout_s=0.5)], on_result=results)
    dispatcher.start()
    dispatcher.submit(alert(id="a-3"))
    (result,) = await results.wait(1)
    await dispatcher.close()
    # At least two attempts: a very busy box may time out the quick answer once more too.
    assert result.ok and result.attempts >= 2
    seen = receiver.requests("/slow")
    assert len(seen) == result.attempts
    assert len({s.headers["x-tollway-delivery"] for s in seen}) == 1


async def test_retries_stop_at_max_attempts(
    receiver: Receiver, results: Results, recorded_sleep: RecordingSleep
) -> None:
    url = receiver.script("/down", 502)
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=0.001)
    dispatcher = AlertDispatcher(
        [webhook("hook", url, retry=policy)], on_result=results, sleep=recorded_sleep
    )
    dispatcher.start()
    dispatcher.submit(alert())
    (result,) = await results.wait(1)
    await dispatcher.close()
    assert not result.ok and result.attempts == 3 and "HTTP 502" in (result.error or "")
    assert len(receiver.requests("/down")) == 3
    assert dispatcher.stats == DeliveryStats(submitted=1, failed=1, retries=2)


async def test_a_stuck_sink_does_not_delay_the_others(receiver: Receiver, results: Results) -> None:
    stuck = webhook("stuck", receiver.script("/stuck", HANG), timeout_s=60)
    healthy = webhook("healthy", receiver.script("/healthy", 200))
    dispatcher = AlertDispatcher([stuck, healthy], on_result=results)
    dispatcher.start()
    for i in range(3):
        assert dispatcher.submit(alert(id=f"a-{i}"))
    await receiver.wait_requests("/stuck", 1)
    delivered = await results.wait(3, sink="healthy")

    # All three reached the healthy sink while the stuck one still holds its first request.
    assert all(r.ok for r in delivered) and results.of("stuck") == []
    receiver.release.set()
    await results.wait(3, sink="stuck")
    await dispatcher.close()
    assert all(r.ok for r in results.of("stuck"))


async def test_a_full_queue_drops_without_blocking(receiver: Receiver, results: Results) -> None:
    dispatcher = AlertDispatcher(
        [webhook("hook", receiver.url("/queued"))], queue_size=2, on_result=results
    )
    # Not started: nothing drains, so the third alert finds the queue full.
    assert dispatcher.submit(alert(id="q-1")) and dispatcher.submit(alert(id="q-2"))
    assert not dispatcher.submit(alert(id="q-3"))
    assert dispatcher.stats == DeliveryStats(submitted=2, dropped=1)
    dispatcher.start()
    await dispatcher.close()
    assert sorted(r.alert_id for r in results.items if r.ok) == ["q-1", "q-2"]
    assert not dispatcher.submit(alert(id="late"))  # closed
    assert dispatcher.stats == DeliveryStats(submitted=2, delivered=2, dropped=2)


async def test_close_drains_queued_and_retrying_deliveries(
    receiver: Receiver, results: Results
) -> None:
    url = receiver.script("/drain", 503, 200)
    dispatcher = AlertDispatcher([webhook("hook", url)], on_result=results)
    dispatcher.start()
    for i in range(20):
        dispatcher.submit(alert(id=f"d-{i}"))
    await dispatcher.close(timeout_s=10)
    assert len(results.items) == 20 and all(r.ok for r in results.items)
    assert dispatcher.stats == DeliveryStats(submitted=20, delivered=20, retries=1)


async def test_close_cancels_what_outlives_the_timeout(
    receiver: Receiver, results: Results
) -> None:
    dispatcher = AlertDispatcher(
        [webhook("hook", receiver.script("/forever", HANG), timeout_s=60)],
        on_result=results,
        max_concurrency=1,
    )
    dispatcher.start()
    dispatcher.submit(alert(id="c-1"))
    dispatcher.submit(alert(id="c-2"))  # waits behind c-1 for the sink's only slot
    await receiver.wait_requests("/forever", 1)
    await dispatcher.close(timeout_s=0.05)
    assert sorted((r.alert_id, r.ok, r.error) for r in results.items) == [
        ("c-1", False, "cancelled at shutdown"),
        ("c-2", False, "cancelled at shutdown"),
    ]
    assert dispatcher.stats == DeliveryStats(submitted=2, failed=2)


async def test_close_without_start_reports_queued_alerts(results: Results) -> None:
    dispatcher = AlertDispatcher([webhook("hook", "http://127.0.0.1:9/")], on_result=results)
    dispatcher.submit(alert(id="never"))
    await dispatcher.close()
    (result,) = results.items
    assert (result.alert_id, result.ok, result.attempts) == ("never", False, 0)


async def test_a_failing_callback_does_not_stop_delivery(receiver: Receiver) -> None:
    seen: list[str] = []

    def explode(result: Any) -> None:
        seen.append(result.alert_id)
        if len(seen) == 1:
            raise RuntimeError("recorder is down")

    dispatcher = AlertDispatcher([webhook("hook", receiver.url("/cb"))], on_result=explode)
    dispatcher.start()
    dispatcher.submit(alert(id="x-1"))
    await receiver.wait_requests("/cb", 1)
    dispatcher.submit(alert(id="x-2"))
    await dispatcher.close()
    assert sorted(seen) == ["x-1", "x-2"]


class Broken:
    """A sink with a bug: unexpected exceptions are failures, never retried."""

    name = "broken"
    retry = RetryPolicy(max_attempts=5)

    def __init__(self) -> None:
        self.calls = 0

    async def deliver(self, alert: Mapping[str, Any]) -> None:
        self.calls += 1
        raise KeyError("oops")


async def test_an_unexpected_sink_exception_fails_without_retry(results: Results) -> None:
    broken = Broken()
    dispatcher = AlertDispatcher([broken], on_result=results)
    dispatcher.start()
    dispatcher.submit(alert())
    (result,) = await results.wait(1)
    await dispatcher.close()
    assert broken.calls == 1 and not result.ok and "KeyError" in (result.error or "")


class Refusing:
    """A sink that always fails retryably, to fill its backlog."""

    name = "refusing"
    retry = RetryPolicy(max_attempts=1000, initial_backoff_s=60, max_backoff_s=60)

    async def deliver(self, alert: Mapping[str, Any]) -> None:
        raise DeliveryError("down", retryable=True)


async def test_a_full_sink_backlog_sheds_only_that_sink(
    receiver: Receiver, results: Results
) -> None:
    healthy = webhook("healthy", receiver.url("/ok"))
    dispatcher = AlertDispatcher([Refusing(), healthy], on_result=results, sink_backlog=2)
    dispatcher.start()
    for i in range(4):  # paced, so only the refusing sink falls behind
        dispatcher.submit(alert(id=f"b-{i}"))
        await results.wait(i + 1, sink="healthy")
    assert all(r.ok for r in results.of("healthy"))
    shed = results.of("refusing")
    assert [(r.alert_id, r.attempts) for r in shed] == [("b-2", 0), ("b-3", 0)]
    assert all("backlog full" in (r.error or "") for r in shed)
    await dispatcher.close(timeout_s=0.05)
    assert len(results.of("refusing")) == 4  # two shed, two cancelled at shutdown


def test_sink_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        AlertDispatcher([webhook("a", "http://x.test"), webhook("a", "http://y.test")])


async def test_submit_never_raises_on_junk() -> None:
    dispatcher = AlertDispatcher([])
    assert not dispatcher.submit(42)  # type: ignore[arg-type]
    assert dispatcher.stats.dropped == 1
    await asyncio.wait_for(dispatcher.close(), 5)
