"""Prometheus metrics, on a registry owned by the application (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


@dataclass(slots=True)
class Observation:
    """What one finished request contributes to the metrics."""

    api: str
    model: str
    provider: str
    status: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    list_cost_usd: float
    actual_cost_usd: float
    latency_s: float
    overhead_s: float
    ttft_s: float | None


class Metrics:
    """The gateway's counters and histograms; label children are cached per label tuple."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("api", "model", "provider")
        self.requests = Counter(
            "tollway_requests", "Requests handled", (*labels, "status"), registry=self.registry
        )
        self.tokens = Counter(
            "tollway_tokens", "Tokens metered", (*labels, "kind"), registry=self.registry
        )
        self.cost = Counter(
            "tollway_cost_usd", "Cost metered in USD", (*labels, "price"), registry=self.registry
        )
        self.latency = Histogram(
            "tollway_request_duration_seconds",
            "End-to-end request latency",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.overhead = Histogram(
            "tollway_gateway_overhead_seconds",
            "Latency the gateway adds on top of the upstream call",
            labels,
            buckets=_OVERHEAD_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "tollway_time_to_first_token_seconds",
            "Time to the first streamed byte",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def observe(self, o: Observation) -> None:
        key = (o.api, o.model, o.provider, o.status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._make_children(
                o.api, o.model, o.provider, o.status
            )
        (requests, t_in, t_cached, t_out, t_reason, c_list, c_actual, lat, ovh, ttft) = children
        requests.inc()
        if o.input_tokens:
            t_in.inc(o.input_tokens)
            t_cached.inc(o.cached_input_tokens)
        if o.output_tokens:
            t_out.inc(o.output_tokens)
            t_reason.inc(o.reasoning_tokens)
        if o.list_cost_usd:
            c_list.inc(o.list_cost_usd)
            c_actual.inc(o.actual_cost_usd)
        lat.observe(o.latency_s)
        ovh.observe(o.overhead_s)
        if o.ttft_s is not None:
            ttft.observe(o.ttft_s)

    def _make_children(self, api: str, model: str, provider: str, status: int) -> tuple[Any, ...]:
        base = (api, model, provider)
        return (
            self.requests.labels(*base, str(status)),
            self.tokens.labels(*base, "input"),
            self.tokens.labels(*base, "cached_input"),
            self.tokens.labels(*base, "output"),
            self.tokens.labels(*base, "reasoning"),
            self.cost.labels(*base, "list"),
            self.cost.labels(*base, "actual"),
            self.latency.labels(*base),
            self.overhead.labels(*base),
            self.ttft.labels(*base),
        )

    def render(self) -> bytes:
        """The exposition text for `/metrics`."""
        return generate_latest(self.registry)
