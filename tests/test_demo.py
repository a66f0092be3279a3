"""`tollway demo`: a gateway with a simulated org's history and live traffic, from one command."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.harness import ADMIN_KEY, GatewayProcess, free_port


def admin_get(base_url: str, path: str) -> Any:
    request = urllib.request.Request(
        base_url + path, headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def served_requests(base_url: str) -> float:
    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("tollway_requests_total{")
    )


def test_demo_backfills_history_and_keeps_traffic_flowing(tmp_path: Path) -> None:
    command = ("demo", "--users", "20", "--days", "1", "--speed", "120")
    demo = GatewayProcess(None, tmp_path, free_port(), command=command)
    try:
        demo.wait_ready(timeout=90)
        # The demo keeps its own ledger beside the data dir's usual one.
        assert (tmp_path / "demo" / "tollway.db").exists()
        history = admin_get(demo.base_url, "/admin/v1/usage?group_by=org&since=2d")
        (simorg,) = [row for row in history["rows"] if row["org"] == "simorg"]
        assert simorg["requests"] > 500
        assert admin_get(demo.base_url, "/admin/v1/flags?since=2d")["flags"] is not None
        # Each simulated team that spent this month got a monthly budget sized from its
        # spend (on the 1st, before members start work, nobody has spent yet).
        budgets = admin_get(demo.base_url, "/admin/v1/budgets")["budgets"]
        team_budgets = [b for b in budgets if b["subject"].startswith("simorg/")]
        assert all(0.2 <= b["fraction"] <= 1.2 for b in team_budgets)
        if time.gmtime().tm_mday > 1:
            assert team_budgets
        # Live traffic goes through this process (the backfill did not): its metrics count it.
        deadline = time.monotonic() + 90
        served = 0.0
        while served < 10 and time.monotonic() < deadline:
            served = served_requests(demo.base_url)
            time.sleep(0.5)
        assert served >= 10, "no live traffic reached the gateway"
    finally:
        demo.terminate()
