"""`tollway budgets`: every budget's use in its current window, with a progress bar.

Live figures (including reservations of requests in flight) come from a running
gateway's admin API; when none answers, settled use is recomputed from the ledger.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table

from tollway.admin.budgets import budget_view
from tollway.budgets.policies import load_policies
from tollway.budgets.reconcile import used_from_ledger
from tollway.budgets.ticket import BudgetState
from tollway.cli_support import open_database
from tollway.ledger.policies import PolicyStore
from tollway.settings import Settings


def fetch_live(url: str, admin_key: str) -> list[dict[str, Any]] | None:
    """Budgets from a running gateway, or None if none answers at `url`."""
    request = urllib.request.Request(
        url.rstrip("/") + "/admin/v1/budgets", headers={"authorization": f"Bearer {admin_key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=3) as resp:
            return list(json.loads(resp.read())["budgets"])
    except (urllib.error.URLError, OSError):
        return None


def from_ledger(settings: Settings) -> list[dict[str, Any]]:
    """Settled use of every configured and API-created budget, summed from the ledger."""
    database, _ = open_database(settings)
    policies = load_policies(settings, PolicyStore(database.engine))
    now = int(time.time() * 1000)
    views = []
    for spec in policies.budgets:
        start, end = spec.window.bounds(now)
        used = used_from_ledger(database.engine, spec, now)
        state = BudgetState(spec, used, 0, start, end, now)
        views.append(budget_view(state, policies.sources.get(spec.id, "config")))
    return views


def admin_key_for(settings: Settings) -> str:
    key = os.environ.get("TOLLWAY_ADMIN_KEY")
    if key:
        return key
    path = settings.resolved_data_dir / "admin-key"
    return path.read_text().strip() if path.exists() else ""


def render(console: Console, budgets: list[dict[str, Any]], source_note: str) -> None:
    table = Table(title=f"Budgets ({source_note})")
    for column in ("budget", "subject", "window", "used", "limit", "", "%", "defined in"):
        table.add_column(column, justify="right" if column in ("used", "limit", "%") else "left")
    for b in sorted(budgets, key=lambda b: -float(b["fraction"])):
        limit = b["hard_limit"] or b["soft_limit"] or 0
        done = b["used"] + b["reserved"]
        bar = ProgressBar(total=max(limit, 1), completed=min(done, max(limit, 1)), width=24)
        if b["soft_exceeded"]:
            bar.complete_style = "yellow"
        if b["hard_limit"] is not None and done >= b["hard_limit"]:
            bar.complete_style = "red"
        display = b["display"]
        table.add_row(
            b["label"],
            b["subject"],
            b["window"],
            display["used"],
            display["limit"] or f"soft {display['soft_limit']}",
            bar,
            f"{100 * float(b['fraction']):.0f}%",
            b["source"],
        )
    console.print(table)
