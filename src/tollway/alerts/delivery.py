"""Alert delivery off the hot path: a bounded queue, then one task per (alert, sink).

`submit` only enqueues, so producers never wait on a sink. A background worker
fans each alert out to every sink as its own task; each sink has its own
concurrency limit and backlog bound, so one slow or dead sink cannot hold up the
others. Failed attempts are retried with capped exponential backoff and jitter,
and every (alert, sink) outcome is reported once as a `DeliveryResult`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from tollway.alerts.config import SinkConfig, sink_names
from tollway.alerts.retry import RetryPolicy
from tollway.alerts.sinks import (
    AlertSink,
    DeliveryError,
    LogSink,
    SharedSession,
    SlackSink,
    WebhookSink,
)

log = logging.getLogger("tollway.alerts")


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The final outcome of one alert at one sink (`delivered_at_ms` is set on success)."""

    alert_id: str
    sink: str
    ok: bool
    attempts: int
    error: str | None = None
    delivered_at_ms: int | None = None


@dataclass(slots=True)
class DeliveryStats:
    """Alerts `submitted` and `dropped` (refused by `submit`); (alert, sink) outcomes
    `delivered` and `failed` (a sink's backlog overflow is a failure); `retries` made."""

    submitted: int = 0
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    retries: int = 0


@dataclass(slots=True)
class _Lane:
    sink: AlertSink
    retry: RetryPolicy
    slots: asyncio.Semaphore
    pending: int = 0


@dataclass(slots=True)
class _Delivery:
    alert: dict[str, Any]
    lane: _Lane
    attempts: int = 0
    last_error: str | None = None
    reported: bool = False


class AlertDispatcher:
    """Delivers submitted alerts to every sink in the background, with retries."""

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        *,
        queue_size: int = 1000,
        on_result: Callable[[DeliveryResult], None] | None = None,
        max_concurrency: int = 4,
        sink_backlog: int | None = None,
        default_retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        names = [sink.name for sink in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"alert sink names must be unique, got {names}")
        fallback = default_retry or RetryPolicy()
        self._lanes = [
            _Lane(
                sink, getattr(sink, "retry", None) or fallback, asyncio.Semaphore(max_concurrency)
            )
            for sink in sinks
        ]
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self._sink_backlog = sink_backlog if sink_backlog is not None else queue_size
        self._on_result = on_result
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._counts = DeliveryStats()
        self._accepting = True
        self._worker: asyncio.Task[None] | None = None
        self._tasks: dict[asyncio.Task[None], _Delivery] = {}

    @property
    def sinks(self) -> list[AlertSink]:
        """The sinks, in delivery order."""
        return [lane.sink for lane in self._lanes]

    @property
    def stats(self) -> DeliveryStats:
        """A snapshot of the counters."""
        return dataclasses.replace(self._counts)

    def start(self) -> None:
        """Start the background worker (call from inside the running loop; idempotent)."""
        if self._worker is None and self._accepting:
            self._worker = asyncio.create_task(self._run(), name="tollway-alerts")

    def submit(self, alert: Mapping[str, Any]) -> bool:
        """Queue `alert` for every sink; False (a drop) if the queue is full or closed.

        Never blocks and never raises. Call it from the event loop's thread. An alert
        without an `id` is given one, which its `DeliveryResult`s carry."""
        try:
            if not self._accepting:
                return self._drop("the dispatcher is closed")
            envelope = dict(alert)  # a snapshot: later changes by the producer are not sent
            if not envelope.get("id"):
                envelope["id"] = uuid.uuid4().hex
            self._queue.put_nowait(envelope)
        except asyncio.QueueFull:
            return self._drop(f"the queue is full ({self._queue.maxsize})")
        except Exception:
            log.exception("alert submit failed")
            return self._drop("the alert could not be queued")
        self._counts.submitted += 1
        return True

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop accepting alerts, let queued and in-flight deliveries finish for up to
        `timeout_s`, then cancel the rest (each reported as failed) and close the sinks."""
        self._accepting = False
        if self._worker is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drain(), timeout_s)
            self._worker.cancel()
            tasks = [self._worker, *self._tasks]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        while not self._queue.empty():
            alert = self._queue.get_nowait()
            for lane in self._lanes:
                self._report(_Delivery(alert, lane), False, "not delivered before shutdown")
        for lane in self._lanes:
            closer: Callable[[], Awaitable[None]] | None = getattr(lane.sink, "aclose", None)
            if closer is not None:
                try:
                    await closer()
                except Exception:
                    log.exception("closing alert sink %s failed", lane.sink.name)

    async def _drain(self) -> None:
        await self._queue.join()
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def _run(self) -> None:
        while True:
            alert = await self._queue.get()
            try:
                self._fan_out(alert)
            except Exception:
                log.exception("fanning out alert %s failed", alert.get("id"))
            finally:
                self._queue.task_done()

    def _fan_out(self, alert: dict[str, Any]) -> None:
        for lane in self._lanes:
            delivery = _Delivery(alert, lane)
            if lane.pending >= self._sink_backlog:
                # This sink is far behind (likely down): shed its copy, not everyone's.
                self._report(delivery, False, f"sink backlog full ({lane.pending} pending)")
                continue
            lane.pending += 1
            task = asyncio.create_task(self._deliver(delivery), name=f"alert:{lane.sink.name}")
            self._tasks[task] = delivery
            task.add_done_callback(self._settled)

    async def _deliver(self, delivery: _Delivery) -> None:
        lane = delivery.lane
        async with lane.slots:
            while True:
                delivery.attempts += 1
                if delivery.attempts > 1:
                    self._counts.retries += 1
                try:
                    await lane.sink.deliver(delivery.alert)
                except DeliveryError as exc:
                    error: DeliveryError = exc
                except Exception as exc:
                    # A bug in the sink, not a failing receiver: trying again will not help.
                    log.exception("alert sink %s raised unexpectedly", lane.sink.name)
                    error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=False)
                else:
                    self._report(delivery, True)
                    return
                delivery.last_error = str(error)
                if not error.retryable or delivery.attempts >= lane.retry.max_attempts:
                    self._report(delivery, False, delivery.last_error)
                    return
                await self._sleep(
                    lane.retry.delay(delivery.attempts, self._rng, error.retry_after_s)
                )

    def _settled(self, task: asyncio.Task[None]) -> None:
        delivery = self._tasks.pop(task)
        delivery.lane.pending -= 1
        if delivery.reported:
            return
        if task.cancelled():  # at shutdown, possibly before it ever ran
            reason = "cancelled at shutdown"
        else:  # a bug (e.g. in an injected sleep): still report, never lose the outcome
            exc = task.exception()
            log.error("alert delivery task failed", exc_info=exc)
            reason = f"internal error: {type(exc).__name__}: {exc}"
        if delivery.last_error:
            reason += f"; last error: {delivery.last_error}"
        self._report(delivery, False, reason)

    def _report(self, delivery: _Delivery, ok: bool, error: str | None = None) -> None:
        delivery.reported = True
        alert_id = str(delivery.alert.get("id"))
        sink = delivery.lane.sink.name
        if ok:
            self._counts.delivered += 1
        else:
            self._counts.failed += 1
            log.warning(
                "alert %s not delivered to %s after %d attempt(s): %s",
                alert_id,
                sink,
                delivery.attempts,
                error,
            )
        result = DeliveryResult(
            alert_id,
            sink,
            ok,
            delivery.attempts,
            error,
            int(self._clock() * 1000) if ok else None,
        )
        if self._on_result is not None:
            try:
                self._on_result(result)
            except Exception:
                log.exception("alert delivery callback failed for %s/%s", alert_id, sink)

    def _drop(self, reason: str) -> bool:
        self._counts.dropped += 1
        # Logged sparingly: a flood of drops must not become a flood of log lines.
        if self._counts.dropped & (self._counts.dropped - 1) == 0:
            log.warning("alert dropped (%d so far): %s", self._counts.dropped, reason)
        return False


def build_sinks(
    configs: Sequence[SinkConfig], session: aiohttp.ClientSession | None = None
) -> list[AlertSink]:
    """Sinks from their configs, sharing one HTTP session (created lazily when `session` is
    None, and then closed by `AlertDispatcher.close`)."""
    shared = SharedSession(session)
    sinks: list[AlertSink] = []
    for config, name in zip(configs, sink_names(configs), strict=True):
        retry = RetryPolicy(config.max_attempts, config.initial_backoff_s, config.max_backoff_s)
        if config.kind == "log":
            sinks.append(LogSink(name, retry=retry))
        elif config.kind == "webhook":
            assert config.url is not None  # guaranteed by SinkConfig validation
            sinks.append(
                WebhookSink(
                    name,
                    config.url,
                    session=shared,
                    secret=config.signing_secret(),
                    timeout_s=config.timeout_s,
                    retry=retry,
                )
            )
        else:
            assert config.url is not None
            sinks.append(
                SlackSink(name, config.url, session=shared, timeout_s=config.timeout_s, retry=retry)
            )
    return sinks
