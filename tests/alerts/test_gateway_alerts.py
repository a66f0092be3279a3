"""A running gateway raises budget alerts and delivers them to a real receiver, retrying 500s."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import SIM_API_KEY, gateway_config
from tests.harness import GatewayThread, settings_for
from tollway.alerts import verify_signature
from tollway.ledger.alerts import AlertStore
from tollway.providers.simulated import SimulatedServer

SECRET = "whsec-test"


class Receiver(ThreadingHTTPServer):
    """Answers 500 to the first delivery attempt of each alert, then 200; keeps what came."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/tollway"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        delivery = self.headers["x-tollway-delivery"]
        with self.server.lock:
            status = 200 if delivery in self.server.seen else 500
            self.server.seen.add(delivery)
            self.server.received.append((dict(self.headers.items()), body, status))
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_budget_alert_is_stored_and_delivered_signed_after_a_retry(
    sim: SimulatedServer, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOLLWAY_TEST_SIM_KEY", SIM_API_KEY)
    config = gateway_config(sim)
    config["budgets"] = [
        {
            "scope": "user",
            "subject": "acme/qa/bea",
            "unit": "tokens_total",
            "window": "day",
            "timezone": "UTC",
            "hard_limit": 100_000,
        },
    ]
    config["insights"] = {
        "alerts": {
            "evaluate_every_s": 0.1,
            "budgets": {"thresholds_pct": [0.01]},
            "spikes": {"enabled": False},
            "sinks": [
                {
                    "kind": "webhook",
                    "url": receiver.url,
                    "secret": SECRET,
                    "initial_backoff_s": 0.01,
                    "max_backoff_s": 0.05,
                }
            ],
        }
    }
    gateway = GatewayThread(settings_for(config, tmp_path)).start()
    try:
        key, _ = gateway.runtime.key_store.create("bea", "qa", "acme", name="alerts")
        client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key)
        client.chat.completions.create(
            model="gpt-test", max_tokens=20, messages=[{"role": "user", "content": "hello"}]
        )
        store = AlertStore(gateway.runtime.database.engine)
        deadline = time.monotonic() + 15
        alert: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            found = store.list(since_ms=0, kind="budget")
            if found and found[0]["deliveries"].get("webhook", {}).get("ok"):
                alert = found[0]
                break
            time.sleep(0.05)
        assert alert is not None, "no delivered budget alert"
    finally:
        gateway.stop()

    assert alert["subject"] == "acme/qa/bea" and alert["state"] == "open"
    assert alert["evidence"]["used"] > 0 and alert["evidence"]["limit"] == 100_000
    assert alert["deliveries"]["webhook"]["attempts"] == 2
    attempts = [r for r in receiver.received if json.loads(r[1])["id"] == alert["alert_id"]]
    assert [status for _, _, status in attempts] == [500, 200]
    headers, body, _ = attempts[-1]
    assert verify_signature(
        SECRET, headers["x-tollway-timestamp"], body, headers["x-tollway-signature"]
    )
    assert json.loads(body)["evidence"]["budget_id"] == alert["evidence"]["budget_id"]
    assert attempts[0][0]["x-tollway-delivery"] == headers["x-tollway-delivery"]
