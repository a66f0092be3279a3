"""The machine a run happened on, and writing its figures (rich tables, JSON file)."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
_PACKAGES = ("uvicorn", "uvloop", "httptools", "aiohttp", "granian", "orjson", "msgspec")


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, kernel, Python and server-stack versions, date, load."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "tollway": tollway_source(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


_REFERENCE = """
import time
t = time.perf_counter()
s = 0
for i in range(2_000_000):
    s += i * i
print(time.perf_counter() - t)
"""


def cpu_reference_ms(core: int | None = None) -> float:
    """Time of a fixed pure-Python loop (best of 3) on `core`: a yardstick for the machine's
    speed at that moment; it rises when a neighbour (another VM, another run) takes the CPU."""
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    argv = [sys.executable, "-c", _REFERENCE]
    runs = [
        subprocess.run(argv, capture_output=True, text=True, check=True, preexec_fn=pin)
        for _ in range(3)
    ]
    best = min(float(r.stdout) for r in runs)
    return round(best * 1000, 1)


def tollway_source() -> str:
    """Which Tollway code runs: the package directory, and the git commit when it is this
    checkout (with `+dirty` if src/ has uncommitted changes)."""
    import tollway

    where = Path(tollway.__file__).resolve().parent
    repo = RESULTS.parent.parent
    if not where.is_relative_to(repo):
        return str(where)
    git = ["git", "-C", str(repo)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True)
    return f"{where} @ {head.stdout.strip()}{'+dirty' if dirty.stdout.strip() else ''}"


def write_json(name: str, figures: dict[str, Any]) -> Path:
    """Write `figures` to benchmarks/results/<name> (the directory is gitignored)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    path.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return path


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_machine(console: Console, info: dict[str, Any]) -> None:
    v = info["versions"]
    console.print(f"[dim]tollway: {info['tollway']}[/]")
    console.print(
        f"[dim]{info['date']} · {info['nproc']} x {info['cpu']} · {info['ram_gib']} GiB · "
        f"Python {info['python']} · uvicorn {v['uvicorn']} · uvloop {v['uvloop']} · "
        f"aiohttp {v['aiohttp']} · granian {v['granian']}[/]"
    )


def table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    """A compact table; the first column left-aligned, the rest right-aligned."""
    t = Table(title=title, title_justify="left", pad_edge=False, box=None, header_style="bold")
    for i, column in enumerate(columns):
        t.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        t.add_row(*row)
    return t
