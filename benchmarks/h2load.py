"""Closed-loop saturation with h2load (C, from nghttp2-client): peak requests per second.

h2load costs far less CPU per request than any Python client, so the server under
test, not the generator, sets the figure. Without h2load, the Python closed loop
in `loadgen` stands in (and says so in its result).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.loadgen import Target, closed_loop

_FINISHED = re.compile(r"finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s")
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout"
)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_TIME = re.compile(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)")


def available() -> bool:
    return shutil.which("h2load") is not None


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def h2load(
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    connections: int,
    duration: float = 0,
    requests: int = 0,
) -> dict[str, Any]:
    """Run h2load over HTTP/1.1 for `duration` seconds (or exactly `requests` requests).

    `sent_max` counts requests the server may have seen (started), `done` those answered:
    a ledger check must find a count between the two.
    """
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        Path(f.name).write_bytes(body)
        argv = ["h2load", "--h1", "-c", str(connections), "-t", "1", "-d", f.name]
        argv += ["-D", f"{round(duration * 1000)}ms"] if duration else ["-n", str(requests)]
        for k, v in headers.items():
            argv += ["-H", f"{k}: {v}"]
        out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    finished, counts, times = _FINISHED.search(out), _REQUESTS.search(out), _TIME.search(out)
    if not (finished and counts and times):
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    _total, started, done, succeeded, failed, errored, timeout = map(int, counts.groups())
    elapsed = _ms(*finished.group(1, 2)) / 1000
    return {
        "tool": "h2load",
        "connections": connections,
        "rps": round(succeeded / elapsed, 1),
        "ok": succeeded,
        "errors": failed + errored + timeout,
        "done": done,
        "sent_max": max(started, done),
        "latency_ms": {
            "min": _ms(*times.group(1, 2)),
            "max": _ms(*times.group(3, 4)),
            "mean": _ms(*times.group(5, 6)),
        },
    }


async def closed(
    target: Target, connections: int, *, duration: float = 0, requests: int = 0
) -> Any:
    """Closed loop on `target` for `duration` s (or `requests` requests): h2load, else Python."""
    if available():
        return await asyncio.to_thread(
            h2load,
            target.url,
            target.headers,
            target.body,
            connections=connections,
            duration=duration,
            requests=requests,
        )
    return (await closed_loop(target, connections, duration or 1.0)).as_dict()
