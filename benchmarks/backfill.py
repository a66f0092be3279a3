"""Backfill speed: a simulated organisation written into a fresh SQLite ledger.

    python -m benchmarks.backfill [--users 6000] [--days 2] [--workers N]

Prints rows, seconds and rows/s (wall clock), and the writing process's CPU time: the
writer is the bottleneck (RowWriter into SQLite), so rows per CPU-second of that process
is what the box would reach with a free core for it. Both move with the load that other
processes put on the machine, which is printed too.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console

from benchmarks.report import fmt, machine, print_machine, table, write_json
from tollway.insights.orgsim import OrgSpec, SimModels, backfill, build_org
from tollway.ledger.database import Database
from tollway.settings import embedded_defaults, parse_settings

END_MS = 1_779_300_000_000  # a fixed end: the same rows every run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("--days", type=float, default=2)
    parser.add_argument("--workers", type=int, default=None, help="generator processes")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    console = Console()
    info = machine()
    print_machine(console, info)
    truth = build_org(OrgSpec(users=args.users, seed=args.seed))
    models = SimModels.from_settings(parse_settings(embedded_defaults()))
    with tempfile.TemporaryDirectory() as scratch:
        database = Database(f"sqlite:///{Path(scratch) / 'ledger.db'}")
        database.migrate()
        cpu = time.process_time()
        result = backfill(
            database, truth, models, end_ms=END_MS, days=args.days, workers=args.workers
        )
        cpu = time.process_time() - cpu
        size_mib = sum(p.stat().st_size for p in Path(scratch).iterdir()) / 2**20
        database.close()
    figures = {
        "users": args.users,
        "days": args.days,
        "rows": result.rows,
        "outcomes": result.outcomes,
        "seconds": round(result.seconds, 2),
        "rows_per_s": round(result.rows_per_s),
        "writer_cpu_s": round(cpu, 2),
        "rows_per_writer_cpu_s": round(result.rows / cpu) if cpu else None,
        "database_mib": round(size_mib),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "machine": info,
    }
    console.print(
        table(
            f"Backfill: {args.users:,} users x {args.days:g} days into SQLite",
            ["rows", "outcomes", "seconds", "rows/s", "writer CPU s", "rows/writer-CPU-s"],
            [
                [
                    f"{result.rows:,}",
                    f"{result.outcomes:,}",
                    fmt(result.seconds, 1),
                    f"{result.rows_per_s:,.0f}",
                    fmt(cpu, 1),
                    f"{figures['rows_per_writer_cpu_s'] or 0:,}",
                ]
            ],
        )
    )
    console.print(
        f"[dim]load average at start {info['loadavg_at_start']}, "
        f"at end {figures['loadavg_at_end']}; database {figures['database_mib']} MiB[/]"
    )
    write_json("backfill.json", figures)


if __name__ == "__main__":
    main()
