"""The gaming review list at scale: scanning a day, and listing 30 days of flags.

    python -m benchmarks.flags [--users 6000] [--days 30]

Fills a temporary SQLite ledger's rollups directly, as a month of a 6,000-user org would
leave them: `user_daily` (one row per user-day), `usage_hourly` for the scanned day (ten
working hours, two models per user), `gaming_flags` for ~3 % of user-days, and outcomes.
Then times `scan_day` (score every user active that day: what the gateway's job does
every few minutes for today and yesterday) and `list_flags` over 30 days (what
`tollway flags --since 30d` and `GET /admin/v1/flags` read). Neither reads `requests`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import orjson
from rich.console import Console

from benchmarks.report import machine, print_machine, table
from tollway.insights.config import DetectionConfig
from tollway.insights.flag_scan import DAY_MS, HOUR_MS, scan_day
from tollway.ledger import Database
from tollway.ledger.flags import list_flags
from tollway.ledger.schema import DAILY_SUMS, gaming_flags, usage_hourly, user_daily

TEAMS = 400
T = TypeVar("T")
DAY0 = 1_767_225_600_000  # 2026-01-01T00:00Z


def fill(db: Database, users: int, days: int, rng: random.Random) -> int:
    """Rollups for `days` days of `users` users; returns the day scanned (the last)."""
    last = DAY0 + (days - 1) * DAY_MS
    with db.engine.begin() as connection:
        for day in range(days):
            rows = []
            for u in range(users):
                requests = rng.randint(20, 300)
                row = dict.fromkeys(DAILY_SUMS, 0)
                row.update(
                    day_start_ms=DAY0 + day * DAY_MS,
                    org="acme",
                    team=f"t{u % TEAMS}",
                    user=f"u{u}",
                    requests=requests,
                    tokens=requests * 4_000,
                    credited_tokens=requests * 3_900,
                    actual_cost_pusd=requests * 4_000 * 2_000_000,
                    duplicate_requests=rng.randint(0, requests // 4),
                    regular_requests=rng.randint(0, requests // 8),
                )
                rows.append(row)
            connection.execute(user_daily.insert(), rows)
        hourly = [
            {
                "hour_start_ms": last + h * HOUR_MS,
                "org": "acme",
                "team": f"t{u % TEAMS}",
                "user": f"u{u}",
                "model": model,
                "provider": "sim",
                "requests": 10,
                "errors": 0,
                "input_tokens": 30_000,
                "cached_input_tokens": 0,
                "cache_write_tokens": 0,
                "output_tokens": 10_000,
                "reasoning_tokens": 0,
                "list_cost_pusd": 0,
                "actual_cost_pusd": 0,
                "weighted_charge_pusd": 0,
                "estimated": 0,
                "latency_ms_sum": 0.0,
            }
            for u in range(users)
            for h in range(8, 18)
            for model in ("gpt-sim", "inhouse-sim")
        ]
        connection.execute(usage_hourly.insert(), hourly)
        flags = [
            {
                "flag_id": f"acme/u{u}/{day}",
                "day_start_ms": DAY0 + day * DAY_MS,
                "org": "acme",
                "team": f"t{u % TEAMS}",
                "user": f"u{u}",
                "score": rng.uniform(0.5, 1.0),
                "tokens": 1_000_000,
                "credited_tokens": 400_000,
                "signals": orjson.dumps({"duplicate_share": {"value": 0.7}}).decode(),
                "sample_request_ids": "[]",
                "status": "open",
                "created_at_ms": 0,
                "updated_at_ms": 0,
            }
            for day in range(days)
            for u in rng.sample(range(users), users * 3 // 100)
        ]
        connection.execute(gaming_flags.insert(), flags)
    return last


def timed(fn: Callable[[], list[T]], repeat: int) -> tuple[float, list[T]]:
    """Median seconds of `repeat` calls, and the last result."""
    results: list[T] = []
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        results = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=6_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    console = Console()
    print_machine(console, machine())
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        db.migrate()
        started = time.perf_counter()
        day = fill(db, args.users, args.days, random.Random(5))
        fill_s = time.perf_counter() - started
        scan_s, _ = timed(lambda: scan_day(db.engine, day, DetectionConfig()), 3)
        since = DAY0
        list_s, listed = timed(lambda: list_flags(db.engine, since_ms=since, limit=100_000), 3)
        open_s, _ = timed(lambda: list_flags(db.engine, since_ms=since, status="open"), 3)
    rows = [
        [f"scan one day ({args.users:,} users scored)", f"{scan_s * 1000:,.0f}"],
        [f"list {args.days} days of flags ({len(listed):,} rows)", f"{list_s * 1000:,.0f}"],
        ["list the 500 highest open flags of 30 days", f"{open_s * 1000:,.0f}"],
    ]
    console.print(
        table(
            f"Review list, {args.users:,} users x {args.days} days (median of 3)",
            ["query", "ms"],
            rows,
        )
    )
    console.print(f"(rollups filled in {fill_s:.1f} s)")


if __name__ == "__main__":
    main()
