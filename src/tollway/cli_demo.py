"""`tollway demo`: the gateway with a synthetic organisation already at work.

The demo keeps its own ledger (`<data dir>/demo/`, unless the config names a database):
it backfills days of the simulated org's history (gamers included), builds the review
list for them, then serves while the same members keep sending live traffic through it.
"""

from __future__ import annotations

import calendar
import logging
import threading
import time
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from tollway.cli_support import ConfigOpt, cli_settings, err
from tollway.settings import Settings

if TYPE_CHECKING:
    from tollway.insights.config import WorkHours
    from tollway.insights.orgsim import OrgTruth, SimModels
    from tollway.ledger.database import Database

console = Console()
DAY_MS = 86_400_000
_BUDGET_HEADROOM = (1.1, 1.6, 2.5, 4.0)
ROUND_MINUTES = 5
log = logging.getLogger("tollway.demo")


def demo(
    config: ConfigOpt = None,
    users: Annotated[int, typer.Option(min=5, help="Members of the simulated org.")] = 120,
    days: Annotated[
        float, typer.Option(min=0.0, help="Days of history to backfill (14: seasonal baselines).")
    ] = 14,
    speed: Annotated[
        float, typer.Option(min=0.1, help="Live traffic: simulated time per wall time.")
    ] = 30,
    seed: Annotated[int, typer.Option(help="Same seed, same organisation.")] = 7,
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.")] = None,
) -> None:
    """Serve with a simulated organisation: history backfilled, live traffic flowing."""
    from tollway.bootstrap import ensure_admin_key
    from tollway.cli_support import open_database
    from tollway.insights.flag_scan import flag_days
    from tollway.insights.in_house import daily_tracker
    from tollway.insights.orgsim import OrgSpec, SimModels, backfill, build_org
    from tollway.server import run_gateway

    settings = cli_settings(config)
    truth = build_org(OrgSpec(users=users, seed=seed))
    settings = _demo_settings(settings, truth.team_work_hours())
    models = SimModels.from_settings(settings)
    database, _ = open_database(settings)
    now = int(time.time() // 60 * 60_000)
    if days > 0:
        with console.status(f"Backfilling {days:g} days of {users} simulated members…"):
            result = backfill(
                database,
                truth,
                models,
                end_ms=now,
                days=days,
                daily=daily_tracker(settings),
                quality_window_days=settings.insights.impact.quality_window_days,
            )
            insights = settings.insights
            first_day = now - int(days * DAY_MS)
            day_starts = range(first_day - first_day % DAY_MS, now, DAY_MS)
            flag_days(database.engine, day_starts, insights.detection, insights.impact, now)
        settings = _with_team_budgets(settings, database, truth.org, now)
        console.print(
            f"Backfilled {result.rows:,} requests and {result.outcomes:,} outcomes "
            f"({result.rows_per_s:,.0f} rows/s); {len(truth.gamers())} of {users} members game."
        )
    database.close()
    admin_key = ensure_admin_key(settings.resolved_data_dir)
    address = host or settings.server.host
    listen = settings.server.port if port is None else port
    base_url = f"http://{'127.0.0.1' if address in ('0.0.0.0', '::') else address}:{listen}"
    driver = threading.Thread(
        target=_drive_when_up,
        args=(base_url, admin_key, truth, models, speed),
        name="demo-traffic",
        daemon=True,
    )
    driver.start()
    console.print(
        "Live traffic starts once the gateway answers. Try: tollway flags --since 7d, "
        "tollway alerts, tollway impact --leaderboard (each with the same --config, and "
        f"TOLLWAY_DATA_DIR={settings.resolved_data_dir})."
    )
    run_gateway(settings, host=host, port=port, console=console)


def _with_team_budgets(settings: Settings, database: Database, org: str, now_ms: int) -> Settings:
    """Monthly budgets for the simulated teams, sized from what each spent this month so
    far (from 1.1x to 4x), so budget and forecast alerts and a 429 or two show at once."""
    from tollway.ledger.queries import usage

    month = time.gmtime(now_ms / 1000)
    start_ms = int(calendar.timegm((month.tm_year, month.tm_mon, 1, 0, 0, 0)) * 1000)
    rows = usage(
        database.engine,
        group_by=["team"],
        since_ms=start_ms,
        until_ms=now_ms + 1,
        filters={"org": org},
    )
    budgets = list(settings.budgets)
    for i, row in enumerate(sorted(rows, key=lambda r: str(r["team"]))):
        spent = row["actual_cost_usd"]
        if spent < 0.001:  # too little to size a budget from (limits are in micro-dollars)
            continue
        limit = spent * _BUDGET_HEADROOM[i % len(_BUDGET_HEADROOM)]
        budgets.append(
            {
                "scope": "team",
                "subject": f"{org}/{row['team']}",
                "window": "month",
                "timezone": "UTC",
                "soft_limit": f"${limit * 0.8:.6f}",
                "hard_limit": f"${limit:.6f}",
            }
        )
    return settings.model_copy(update={"budgets": budgets})


def _demo_settings(settings: Settings, team_hours: Mapping[str, WorkHours]) -> Settings:
    """The demo's own data dir (unless a database is configured) and the simulated teams'
    working hours for gaming detection."""
    update: dict[str, object] = {}
    if settings.database_url is None:
        update["data_dir"] = str(settings.resolved_data_dir / "demo")
    hours = dict(team_hours)
    detection = settings.insights.detection.model_copy(update={"team_work_hours": hours})
    update["insights"] = settings.insights.model_copy(update={"detection": detection})
    return settings.model_copy(update=update)


def _busy_moment(now_ms: int) -> int:
    """The simulated clock's start: the last Tuesday, 14:00 UTC (working hours from Europe
    to the Americas), so live traffic flows whatever the day and hour the demo starts."""
    day = now_ms - now_ms % DAY_MS
    weekday = (day // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday (3, Monday = 0)
    return day - ((weekday - 1) % 7) * DAY_MS + 14 * 3_600_000


def _drive_when_up(
    base_url: str, admin_key: str, truth: OrgTruth, models: SimModels, speed: float
) -> None:
    """Wait for the gateway's health check, then drive it with the org's live traffic."""
    from tollway.insights.orgsim import run_live

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=2):
                break
        except OSError:
            time.sleep(0.2)
    else:
        err.print("[red]demo: the gateway did not come up; no live traffic[/]")
        return
    # In rounds of a few minutes: the driver plans each round's traffic up front.
    sim_ms = _busy_moment(int(time.time() * 1000))
    while True:
        try:
            run_live(
                base_url,
                admin_key,
                truth,
                models,
                minutes=ROUND_MINUTES,
                speed=speed,
                sim_start_ms=sim_ms,
            )
        except Exception:
            log.exception("demo traffic stopped")
            return
        sim_ms += int(ROUND_MINUTES * 60_000 * speed)
