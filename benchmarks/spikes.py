"""Spike detector: ms per `observe` over 6,000 users + 50 teams + 1 org, and memory per entity.

    python -m benchmarks.spikes

Every entity reports two metrics (weighted tokens, cost), so one bucket is 12,102 series.
Four weeks of history are seeded for the measured hours (`seed_hour`, as a restart from
hourly rollups would), so expectations are seasonal; one hour without history measures
the cold path (team priors from the members). Users are measured under the 5-minute floor
(the common case: nothing to judge) and, separately, all above it (each one judged).
A 5-minute detector does most of its work in the last bucket of an hour, which closes the
hour into history and computes its hour-of-week statistics (for the trend). Figures are
the median (and best) of the buckets measured, in ms. Memory is what tracemalloc sees the
detector allocate, per entity and per series, after the first bucket (history storage
is allocated up front).
"""

from __future__ import annotations

import random
import statistics
import time
import tracemalloc
from collections.abc import Mapping

from rich.console import Console

from benchmarks.report import machine, print_machine, table
from tollway.insights.spikes import EntityKey, SpikeConfig, SpikeDetector

USERS, TEAMS = 6_000, 50
HOUR = 3_600_000
WEEK = 7 * 24 * HOUR
START = 1_767_571_200_000 + 4 * WEEK + 9 * HOUR  # a Monday 09:00 UTC, after 4 weeks
SEEDED_HOURS = 4  # 09:00-13:00 have history; 13:00 is cold

Values = dict[EntityKey, Mapping[str, float]]


def entities() -> list[EntityKey]:
    users: list[EntityKey] = [("user", f"u{i}", f"t{i % TEAMS}") for i in range(USERS)]
    teams: list[EntityKey] = [("team", f"t{j}", "acme") for j in range(TEAMS)]
    return [*users, *teams, ("org", "acme", None)]


def bucket(rng: random.Random, keys: list[EntityKey], per_hour: int, heavy: float) -> Values:
    """One bucket of values: users' tokens vary (x `heavy`), teams and org are their sums."""
    scale = 12 / per_hour
    values: Values = {}
    for kind, eid, parent in keys:
        size = {"user": heavy, "team": USERS / TEAMS, "org": float(USERS)}[kind]
        tokens = rng.uniform(20_000, 120_000) * size / scale
        values[(kind, eid, parent)] = {"weighted_tokens": tokens, "cost_usd": tokens * 6e-6}
    return values


def seed(detector: SpikeDetector, keys: list[EntityKey], rng: random.Random, heavy: float) -> None:
    per_hour = HOUR // detector.config.width_ms
    for week in range(1, 5):
        for h in range(SEEDED_HOURS):
            hour = START + h * HOUR - week * WEEK
            for key, metrics in bucket(rng, keys, per_hour, heavy).items():
                for metric, value in metrics.items():
                    spread = 0.3 * value  # a bucket's usual noise
                    detector.baseline.seed_hour(key[:2], metric, hour, value * per_hour, spread)


def measure(config: SpikeConfig, heavy: float = 1.0) -> dict[str, float | list[float]]:
    """Times (ms) of each observe over SEEDED_HOURS + 1 hours; memory of the first bucket.

    With `heavy` 1.0 users stay under the 5-minute floor (as most do, most of the time)
    and take the quiet path; 5.0 puts every series above it, judged every bucket."""
    rng = random.Random(1)
    keys = entities()
    per_hour = HOUR // config.width_ms
    n = per_hour * (SEEDED_HOURS + 1)
    buckets = [bucket(rng, keys, per_hour, heavy) for _ in range(n)]
    tracemalloc.start()
    detector = SpikeDetector(config)
    base = tracemalloc.get_traced_memory()[0]
    detector.observe(START, buckets[0])  # creates every series and its history storage
    allocated = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    fresh = SpikeDetector(config)
    seed(fresh, keys, rng, heavy)
    times = []
    for i, values in enumerate(buckets):
        started = time.perf_counter()
        fresh.observe(START + i * config.width_ms, values)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "times": times,
        "bytes_per_entity": allocated / len(keys),
        "bytes_per_series": allocated / len(detector),
    }


def summary(times: list[float]) -> str:
    return f"{statistics.median(times):,.1f} ({min(times):,.1f})" if times else "-"


def inside(times: list[float], seeded: int) -> list[float]:
    """Buckets that neither open nor close an hour."""
    return [t for i, t in enumerate(times[:seeded]) if 0 < i % 12 < 11]


def main() -> None:
    console = Console()
    print_machine(console, machine())
    five = measure(SpikeConfig.five_minute())
    hourly = measure(SpikeConfig.hourly())
    heavy = measure(SpikeConfig.five_minute(), heavy=5.0)
    ft, ht, hv = five["times"], hourly["times"], heavy["times"]
    assert isinstance(ft, list) and isinstance(ht, list) and isinstance(hv, list)
    seeded = 12 * SEEDED_HOURS
    rows = [
        ["5 min: first bucket of an hour", summary(ft[12:seeded:12])],
        ["5 min: inside an hour", summary(inside(ft, seeded))],
        ["5 min: last bucket of an hour (closes it)", summary(ft[11:seeded:12])],
        ["5 min: first bucket, no history (team priors)", summary(ft[seeded : seeded + 1])],
        ["5 min, all users above the floor: first bucket", summary(hv[12:seeded:12])],
        ["5 min, all users above the floor: inside an hour", summary(inside(hv, seeded))],
        ["5 min, all users above the floor: last bucket", summary(hv[11:seeded:12])],
        ["1 h: a bucket", summary(ht[1:SEEDED_HOURS])],
        ["1 h: a bucket, no history (team priors)", summary(ht[SEEDED_HOURS:])],
    ]
    title = f"observe, {USERS:,} users + {TEAMS} teams + 1 org, 2 metrics: ms median (best)"
    console.print(table(title, ["bucket", "ms"], rows))
    memory = [
        [name, f"{r['bytes_per_entity']:,.0f}", f"{r['bytes_per_series']:,.0f}"]
        for name, r in (("5 min", five), ("1 h", hourly))
    ]
    console.print(table("Memory (bytes)", ["detector", "per entity", "per series"], memory))


if __name__ == "__main__":
    main()
