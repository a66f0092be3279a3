"""Prometheus metrics reflect what was served."""

from __future__ import annotations

import re
import urllib.request

import openai

from tests.harness import GatewayThread


def scrape(gateway: GatewayThread) -> str:
    with urllib.request.urlopen(gateway.base_url + "/metrics", timeout=5) as resp:
        assert resp.headers["content-type"].startswith("text/plain")
        return resp.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_requests_tokens_cost_and_latency_are_exported(
    gateway: GatewayThread, oai: openai.OpenAI
) -> None:
    before = scrape(gateway)
    labels = {"api": "openai.chat", "model": "gpt-test", "provider": "sim-openai"}
    completion = oai.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "metrics sim:tokens=6"}]
    )
    after = scrape(gateway)
    assert (
        metric(after, "tollway_requests_total", status="200", **labels)
        == metric(before, "tollway_requests_total", status="200", **labels) + 1
    )
    output = metric(after, "tollway_tokens_total", kind="output", **labels) - metric(
        before, "tollway_tokens_total", kind="output", **labels
    )
    assert output == 6
    assert completion.usage is not None
    assert metric(after, "tollway_cost_usd_total", price="list", **labels) > 0
    assert re.search(r"tollway_gateway_overhead_seconds_bucket\{.*gpt-test", after)
    assert metric(after, "tollway_request_duration_seconds_count", **labels) >= 1
