"""Where the gateway spends its CPU under load: py-spy on `tollway serve`, summarised.

    python -m benchmarks.profile [--rate 500 | --saturate] [--seconds 15] [--native]

Starts the same stack as `benchmarks.gateway`, drives it (open-loop at --rate, or
closed-loop with h2load), records the gateway with py-spy (collapsed stacks, for
flamegraph.pl or speedscope) and prints the functions with the most samples (inclusive, and self).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from rich.console import Console

from benchmarks import h2load as h2
from benchmarks.gateway import chat_body, run_async
from benchmarks.loadgen import Target, open_loop
from benchmarks.report import RESULTS, table
from benchmarks.stack import Stack

PATH = "/v1/chat/completions"
_ENTRY = {
    "<module> (tollway/__main__.py)",
    "main (tollway/cli.py)",
    "serve (tollway/cli.py)",
    "run_gateway (tollway/server.py)",
    "run_gateway.<locals>.main (tollway/server.py)",
}


def _frame(raw: str) -> str:
    """`func (path/file.py:123)` → `func (path/file.py)`: aggregate over line numbers."""
    name, _, where = raw.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].rstrip(')')})" if where else name


def summarise(collapsed: Path) -> tuple[Counter[str], Counter[str], int]:
    """(inclusive samples, self samples, total samples) per frame of a py-spy raw file."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    return inclusive, own, total


async def drive(target: Target, args: argparse.Namespace) -> None:
    if args.saturate:
        await asyncio.to_thread(
            h2.h2load,
            target.url,
            target.headers,
            target.body,
            connections=64,
            duration=args.seconds + 2,
        )
    else:
        await open_loop([target], args.rate, args.seconds + 2)
    target.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rate", type=float, default=500, help="open-loop requests/s")
    p.add_argument("--saturate", action="store_true", help="closed loop (h2load, 64 conns)")
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--native", action="store_true", help="include C frames (py-spy --native)")
    p.add_argument(
        "--all-threads", action="store_true", help="also samples without the GIL (C work, waits)"
    )
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    if not shutil.which("py-spy"):
        raise SystemExit("py-spy is not installed: pip install py-spy")
    console = Console(width=140)
    stack = Stack(pin=True)
    RESULTS.mkdir(exist_ok=True)
    name = "saturate" if args.saturate else f"{args.rate:g}rps"
    raw = RESULTS / f"profile-{name}.txt"  # collapsed stacks: flamegraph.pl or speedscope
    try:
        sim = stack.simulator("upstream")
        gateway = stack.gateway(stack.write_config({"sim": sim}))
        key = stack.create_key()
        stack.wait_key(gateway, key, chat_body("gpt-sim"))
        auth = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        target = Target("gateway", "127.0.0.1", gateway.port, PATH, auth, chat_body("gpt-sim"))
        spy = ["py-spy", "record", "-p", str(gateway.pid), "-d", f"{args.seconds:g}", "-r", "250"]
        spy += ["--nonblocking", "--format", "raw", "-o", str(raw)]
        spy += ["--native"] if args.native else []
        spy += [] if args.all_threads else ["--gil"]
        recorder = subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run_async(drive(target, args))
        recorder.wait(timeout=60)
    finally:
        stack.close()
    inclusive, own, total = summarise(raw)
    held = "" if args.all_threads else f"; GIL held {total / (250 * args.seconds):.0%} of the time"
    console.print(f"{total:,} samples ({name}{held}); collapsed stacks: {raw}")
    ours = Counter({f: n for f, n in inclusive.items() if "tollway/" in f and f not in _ENTRY})
    for title, counter in (("inclusive, tollway code", ours), ("self, all code", own)):
        rows = [
            [frame, f"{n:,}", f"{100 * n / total:.1f}%"]
            for frame, n in counter.most_common(args.top)
        ]
        console.print(table(f"Top frames, {title}", ["function (file)", "samples", "share"], rows))


if __name__ == "__main__":
    main()
