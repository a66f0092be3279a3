"""Impact metrics on a big ledger: team metrics and the leaderboard over 30 days of 6,000 users.

    python -m benchmarks.impact [--days 30] [--users 6000] [--period 30] [--db PATH]

Fills a SQLite ledger directly with bulk inserts: one key per user (teams of 3-27),
every user active ~8 hours a day on two models, one of them in-house (≈ days x users x 16
rows in `usage_hourly`, in the order the gateway writes them: by hour, and the matching
days x users rows of `user_daily`), ~20k outcomes with 1-3 actors (5% of users never use
AI, 2% of PRs reverted). Then times the team metrics (with the trend against the previous
period), the leaderboard and one team's per-user view over the last `--period` days:
cold (the first call of a new process) and again (best of 3 later calls in this one).
`--db` keeps the file. With `--days 60` the previous period has data too, as it would in
production.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from benchmarks.report import cpu_reference_ms, fmt, machine, print_machine, table, write_json
from tollway.insights.config import ImpactConfig
from tollway.insights.impact import leaderboard, team_metrics, user_metrics
from tollway.ledger.database import Database
from tollway.ledger.schema import DAILY_KEYS, DAILY_SUMS, ROLLUP_KEYS, ROLLUP_SUMS

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MODELS = (("gpt-5.4", "openai", False), ("qwen-coder", "gpu-pool", True))  # (.., in-house)


def org(users: int, rng: random.Random) -> list[tuple[str, str, int]]:
    """(team, user, first working hour) for `users` users in teams of 3-27."""
    people: list[tuple[str, str, int]] = []
    team = 0
    while len(people) < users:
        size = rng.randint(3, 27)
        people += [(f"team{team:03d}", f"u{len(people) + i:05d}", 0) for i in range(size)]
        team += 1
    return sorted((t, u, rng.randint(7, 11)) for t, u, _ in people[:users])


def usage_rows(
    people: list[tuple[str, str, int]], start_ms: int, days: int, skip: set[str]
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """One day at a time: its `usage_hourly` rows in key order (as hours are written) and
    its `user_daily` rows with the same sums (as the writer adds them up)."""
    tokens = [(1_000 + 37 * i % 19_000, 100 + 13 * i % 2_900) for i in range(997)]
    n = 0
    for day in range(days):
        day_ms = start_ms + day * DAY_MS
        rows: list[tuple[Any, ...]] = []
        # (team, user) -> [requests, tokens, cost, in-house tokens]
        daily: dict[tuple[str, str], list[int]] = {}
        for hour in range(24):
            hour_ms = day_ms + hour * HOUR_MS
            for team, user, first in people:
                if user in skip or not first <= hour < first + 8:
                    continue
                acc = daily.setdefault((team, user), [0, 0, 0, 0])
                for model, provider, in_house in MODELS:
                    n += 1
                    inp, out = tokens[n % len(tokens)]
                    cost = inp * 2_500_000 + out * 15_000_000
                    sums = (5, 0, inp, 0, 0, out, 0, cost, cost, cost, 0, 900.0, 0, cost)
                    rows.append((hour_ms, "acme", team, user, model, provider, *sums, inp + out))
                    acc[0] += 5
                    acc[1] += inp + out
                    acc[2] += cost
                    acc[3] += (inp + out) * in_house
        yield rows, [_daily_row(day_ms, team, user, acc) for (team, user), acc in daily.items()]


def _daily_row(day_ms: int, team: str, user: str, acc: list[int]) -> tuple[Any, ...]:
    """A `user_daily` row (DAILY_KEYS + DAILY_SUMS order); no gaming, so credited = tokens."""
    requests, tokens, cost, in_house = acc
    sums = dict.fromkeys(DAILY_SUMS, 0) | {
        "requests": requests,
        "tokens": tokens,
        "credited_tokens": tokens,
        "actual_cost_pusd": cost,
        "in_house_tokens": in_house,
    }
    return (day_ms, "acme", team, user, *sums.values())


def fill(path: Path, *, days: int, users: int, now_ms: int, seed: int = 7) -> dict[str, int]:
    """A migrated SQLite ledger at `path` with `days` of activity ending today."""
    rng = random.Random(seed)
    database = Database(f"sqlite:///{path}")
    database.migrate()
    people = org(users, rng)
    non_ai = {u for _, u, _ in people if rng.random() < 0.05}
    start = now_ms - now_ms % DAY_MS - (days - 1) * DAY_MS
    raw = database.engine.raw_connection()
    counts = {"usage_hourly": 0, "user_daily": 0, "outcomes": 0, "outcome_actors": 0}
    counts["api_keys"] = users
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        hourly = _insert("usage_hourly", (*ROLLUP_KEYS, *ROLLUP_SUMS))
        daily = _insert("user_daily", (*DAILY_KEYS, *DAILY_SUMS))
        for rows, daily_rows in usage_rows(people, start, days, non_ai):
            cur.executemany(hourly, rows)
            cur.executemany(daily, daily_rows)
            counts["usage_hourly"] += len(rows)
            counts["user_daily"] += len(daily_rows)
            raw.commit()
        # The two rollups must agree, as the gateway's writer keeps them.
        sums = [
            cur.execute(f"SELECT sum(requests), sum(credited_tokens) FROM {table}").fetchone()
            for table in ("usage_hourly", "user_daily")
        ]
        assert sums[0] == sums[1], sums
        cur.executemany(
            "INSERT INTO api_keys (key_id, key_hash, prefix, name, org, team, user, role, tags,"
            " created_at_ms, updated_at_ms) VALUES (?, ?, 'tw-', NULL, 'acme', ?, ?, 'user',"
            " '[]', ?, ?)",
            [(f"key_{u}", f"hash_{u}", t, u, start, start) for t, u, _ in people],
        )
        outcomes, actors = _outcomes(people, start, days, rng)
        cur.executemany(
            "INSERT INTO outcomes (outcome_id, kind, org, team, actors, size, occurred_at_ms,"
            " received_at_ms, source, refs, voided_at_ms, voided_by, extra)"
            " VALUES (?, ?, 'acme', ?, ?, ?, ?, ?, 'bench', ?, ?, ?, '{}')",
            outcomes,
        )
        cur.executemany(
            "INSERT INTO outcome_actors (outcome_id, user, team, occurred_at_ms)"
            " VALUES (?, ?, ?, ?)",
            actors,
        )
        counts["outcomes"], counts["outcome_actors"] = len(outcomes), len(actors)
        raw.commit()
    finally:
        raw.close()
        database.close()
    return counts


def _insert(table: str, names: tuple[str, ...]) -> str:
    columns = ", ".join(f'"{n}"' for n in names)  # `user` needs quoting on PostgreSQL
    return f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(names))})"


def _outcomes(
    people: list[tuple[str, str, int]], start: int, days: int, rng: random.Random
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """~20k merged PRs per 30 days of 6,000 users (1-3 actors of one team), 2% reverted."""
    by_team: dict[str, list[tuple[str, int]]] = {}
    for team, user, first in people:
        by_team.setdefault(team, []).append((user, first))
    outcomes: list[tuple[Any, ...]] = []
    actors: list[tuple[Any, ...]] = []
    per_user_day = 20_000 / (30 * 6_000)
    for team, members in by_team.items():
        for i in range(int(len(members) * days * per_user_day)):
            group = rng.sample(members, k=min(len(members), rng.choice((1, 1, 2, 3))))
            at = start + rng.randrange(days) * DAY_MS + (group[0][1] + rng.randint(0, 9)) * HOUR_MS
            oid = f"github:acme/{team}#{i}"
            voided = rng.random() < 0.02
            outcomes.append(
                (
                    oid,
                    "pr_merged",
                    team,
                    orjson.dumps([u for u, _ in group]).decode(),
                    rng.randint(1, 400),
                    at,
                    at,
                    "[]",
                    at + DAY_MS if voided else None,
                    f"{oid}-revert" if voided else None,
                )
            )
            actors += [(oid, u, team, at) for u, _ in group]
    return outcomes, actors


REPORTS: dict[str, Callable[..., Any]] = {
    "metrics": team_metrics,
    "leaderboard": leaderboard,
    "users": user_metrics,
}


def run_report(path: Path, name: str, window: dict[str, Any]) -> tuple[float, Any]:
    """Open the ledger at `path` and time one call of report `name`, in seconds."""
    database = Database(f"sqlite:///{path}")
    try:
        started = time.perf_counter()
        result = REPORTS[name](database.engine, **window)
        return time.perf_counter() - started, result
    finally:
        database.close()


def cold(path: Path, name: str, window: dict[str, Any]) -> tuple[float, Any]:
    """`run_report` in a new process: nothing is left from earlier calls but the OS cache."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(run_report, (path, name, window))


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Best wall time of `repeat` calls, in seconds."""
    best = math.inf
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("--period", type=int, default=30, help="days the reports cover")
    parser.add_argument("--db", type=Path, help="keep the ledger here (reused if it exists)")
    args = parser.parse_args()
    console = Console()
    info = machine()
    print_machine(console, info)
    workdir = tempfile.TemporaryDirectory(prefix="tollway-impact-")
    path = args.db or Path(workdir.name) / "ledger.db"
    now = int(time.time() * 1000)
    if not path.exists():
        started = time.perf_counter()
        counts = fill(path, days=args.days, users=args.users, now_ms=now)
        console.print(f"filled {path} in {time.perf_counter() - started:.0f} s: {counts}")
    since = now - args.period * DAY_MS
    window: dict[str, Any] = {"since_ms": since, "until_ms": now + 1, "config": ImpactConfig()}
    figures: dict[str, float] = {"cpu_reference_ms": cpu_reference_ms()}
    figures["metrics_cold_s"], report = cold(path, "metrics", window)
    figures["leaderboard_cold_s"], bands = cold(path, "leaderboard", window)
    team = report["teams"][0]["team"]
    team_window = window | {"org": "acme", "team": team}
    figures["users_cold_s"], _ = cold(path, "users", team_window)
    database = Database(f"sqlite:///{path}")
    engine = database.engine
    figures["metrics_again_s"] = timed(lambda: team_metrics(engine, **window), 3)
    figures["leaderboard_again_s"] = timed(lambda: leaderboard(engine, **window), 3)
    figures["users_again_s"] = timed(lambda: user_metrics(engine, **team_window), 3)
    database.close()
    total = report["total"]
    console.print(
        f"{len(report['teams'])} teams, {total['active_users']} active users, "
        f"{total['outcomes']} attributed outcomes ({total['outcomes_unattributed']} not, "
        f"{total['outcomes_voided']} voided), {total['credited_tokens']:,} credited tokens, "
        f"in-house share {total['in_house_share']:.0%}; "
        f"bands: {[len(b['teams']) for b in bands['bands']]}, "
        f"{len(bands['not_compared'])} not compared"
    )
    rows = [
        ("team metrics + trend", "metrics"),
        ("leaderboard", "leaderboard"),
        ("per-user view of a team", "users"),
    ]
    console.print(
        table(
            f"Impact over {args.period} of {args.days} days of {args.users:,} users (SQLite), s",
            ["query", "cold (new process)", "again (best of 3)"],
            [
                [label, *(fmt(figures[f"{key}_{w}_s"], 3) for w in ("cold", "again"))]
                for label, key in rows
            ],
        )
    )
    written = write_json(
        "impact.json", {"machine": info, "args": vars(args) | {"db": str(path)}, "figures": figures}
    )
    console.print(f"[dim]cpu reference {figures['cpu_reference_ms']} ms; figures in {written}[/]")
    workdir.cleanup()


if __name__ == "__main__":
    main()
