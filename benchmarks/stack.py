"""The processes under test: simulated upstreams and the gateway, on loopback ports.

Each runs as its own subprocess (as in production), optionally pinned to a core,
with a throw-away data directory so the ledger starts empty.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
ADMIN_KEY = "tw-admin-bench"
UPSTREAM_KEY = "sk-bench-upstream"
UPSTREAM_KEY_ENV = "TOLLWAY_BENCH_UPSTREAM_KEY"
REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A free loopback port (closed again; the small race is acceptable here)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_pids(pid: int) -> list[int]:
    """`pid` and all its descendants (granian runs its workers as child processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [
                    int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()
                ]
        except OSError:
            continue
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    """Resident memory (VmRSS) of `pid` and its descendants, in MiB."""
    total_kb = 0
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return total_kb / 1024


@dataclass
class Proc:
    """A started server process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_s(self) -> float:
        """CPU seconds used so far by the process tree."""
        return sum(cpu_seconds(p) for p in tree_pids(self.pid))

    def rss_mib(self) -> float:
        return rss_mib(self.pid)

    def stop(self, timeout: float = 30) -> None:
        """SIGINT (graceful: the gateway flushes its ledger), then SIGKILL if it hangs."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _wait_http(proc: Proc, url: str, headers: dict[str, str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited early:\n{proc.log_tail()}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers; the status does not matter here
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not become ready:\n{proc.log_tail()}")


class Stack:
    """Starts and owns every process of one benchmark run; `close()` stops them all."""

    def __init__(self, *, pin: bool) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="tollway-bench-")
        self.dir = Path(self.tmp.name)
        self.data_dir = self.dir / "data"
        ncpu = len(os.sched_getaffinity(0))
        self.pin = pin and ncpu >= 2
        # Upstreams and load generator share core 0; the gateway gets core 1 to itself.
        self.client_cores = {0} if self.pin else None
        self.gateway_cores = {1} if self.pin else None
        self.procs: list[Proc] = []
        self.env = {
            **os.environ,
            "TOLLWAY_DATA_DIR": str(self.data_dir),
            "TOLLWAY_ADMIN_KEY": ADMIN_KEY,
            UPSTREAM_KEY_ENV: UPSTREAM_KEY,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        if self.client_cores:
            os.sched_setaffinity(0, self.client_cores)

    def _spawn(self, name: str, argv: list[str], port: int, cores: set[int] | None) -> Proc:
        log = self.dir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv,
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
            )
        proc = Proc(name, popen, port, log)
        self.procs.append(proc)
        return proc

    def simulator(self, name: str, *, ttft_ms: float = 0, tokens_per_s: float = 0) -> Proc:
        """`tollway simulate-provider` on a free port; returns once it answers."""
        port = free_port()
        argv = [sys.executable, "-m", "tollway", "simulate-provider", "--port", str(port)]
        argv += ["--ttft-ms", str(ttft_ms), "--tokens-per-s", str(tokens_per_s)]
        proc = self._spawn(name, argv, port, self.client_cores)
        _wait_http(proc, f"http://127.0.0.1:{port}/v1/models", self.upstream_headers())
        return proc

    def redis(self) -> str:
        """A redis-server (Debian's) on a free port, pinned with the upstreams; its URL."""
        port = free_port()
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.dir)]
        self._spawn("redis", argv, port, self.client_cores)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        return f"redis://127.0.0.1:{port}/0"

    def write_config(
        self, upstreams: dict[str, Proc], budgets: str = "off", rules: bool = False
    ) -> Path:
        """A gateway config: one `kind: openai` provider per upstream, models priced as gpt-5.4.

        The first upstream serves `gpt-sim`; another named `stream` serves `gpt-sim-stream`.
        With `budgets` `memory` or `redis`, the benchmark key's org, team and user each get a
        budget (never reached) and the peak schedule is on, so every request reserves and
        settles on three counters (in-process, or in a redis-server started here).
        """
        providers, models = [], []
        for i, (name, proc) in enumerate(upstreams.items()):
            providers.append(
                {
                    "name": name,
                    "kind": "openai",
                    "base_url": f"http://127.0.0.1:{proc.port}/v1",
                    "api_key_env": UPSTREAM_KEY_ENV,
                }
            )
            model = "gpt-sim" if i == 0 else f"gpt-sim-{name}"
            deployment = {"provider": name, "model": "gpt-sim"}
            models.append({"name": model, "price_as": "gpt-5.4", "deployments": [deployment]})
        config: dict[str, object] = {"providers": providers, "models": models}
        if budgets != "off":
            config["budgets"] = [
                {"scope": "org", "subject": "bench", "window": "month", "hard_limit": "$1000000"},
                {
                    "scope": "team",
                    "subject": "bench/bench",
                    "window": "day",
                    "soft_limit": "$900000",
                    "hard_limit": "$1000000",
                },
                {
                    "scope": "user",
                    "subject": "bench/bench/bench",
                    "unit": "tokens_total",
                    "window": "rolling 24h",
                    "hard_limit": 10**15,
                },
            ]
        if rules:  # the realistic rule set of benchmarks.steering, steering to "inhouse"
            from benchmarks.steering import RULES

            first = next(iter(upstreams))
            models.append(
                {
                    "name": "inhouse",
                    "in_house": True,
                    "price": {"input": "0.05", "output": "0.2"},
                    "deployments": [{"provider": first, "model": "gpt-sim"}],
                }
            )
            config["steering"] = RULES
        if budgets == "redis":
            self.env["TOLLWAY_REDIS_URL"] = self.redis()
        path = self.dir / "tollway.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def gateway(
        self, config: Path, server: str = "uvicorn", factory: str = "benchmarks.asgi_app:create"
    ) -> Proc:
        """The gateway under `server`: `uvicorn` (`tollway serve`), `uvicorn-<loop>-<http>`
        (the uvicorn CLI, e.g. `uvicorn-asyncio-h11`) or `granian`."""
        port = free_port()
        if server == "uvicorn":
            argv = [sys.executable, "-m", "tollway", "serve", "--config", str(config)]
            argv += ["--port", str(port)]
        elif server.startswith("uvicorn-"):  # uvicorn-<loop>-<http>, e.g. uvicorn-uvloop-httptools
            _, loop, http = server.split("-")
            argv = [sys.executable, "-m", "uvicorn", "--factory", factory]
            argv += ["--port", str(port), "--loop", loop, "--http", http]
            argv += ["--no-access-log", "--log-level", "warning", "--backlog", "4096"]
        elif server == "granian":
            argv = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory"]
            argv += ["--port", str(port), "--workers", "1", "--loop", "uvloop", "--http", "1"]
            argv += ["--no-ws", "--log-level", "warning", "--backlog", "4096"]
            argv += [factory]
        else:
            raise ValueError(f"unknown server {server!r}")
        self.env["TOLLWAY_CONFIG"] = str(config)
        proc = self._spawn(f"gateway-{server}", argv, port, self.gateway_cores)
        _wait_http(proc, f"http://127.0.0.1:{port}/healthz", {})
        return proc

    def upstream_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {UPSTREAM_KEY}", "content-type": "application/json"}

    def create_key(self) -> str:
        """A user key in the gateway's ledger (the gateway picks it up within a second)."""
        from tollway.ledger.database import Database
        from tollway.ledger.keys import KeyStore

        database = Database(f"sqlite:///{self.data_dir / 'tollway.db'}")
        try:
            key, _ = KeyStore(database.engine).create("bench", "bench", "bench", name="benchmark")
        finally:
            database.engine.dispose()
        return key

    def wait_key(self, gateway: Proc, key: str, body: bytes, timeout: float = 10) -> int:
        """Send chat requests with `key` until one succeeds; returns how many were sent."""
        url = f"http://127.0.0.1:{gateway.port}/v1/chat/completions"
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        deadline, sent = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            sent += 1
            try:
                with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=5):
                    return sent
            except urllib.error.HTTPError as exc:
                if exc.code != 401:
                    raise
                time.sleep(0.2)
        raise RuntimeError("the gateway never accepted the benchmark key")

    def ledger_counts(self, since_ms: int) -> dict[str, int]:
        """Requests in the ledger: rows of `requests`, and the hourly rollups' total."""
        from sqlalchemy import func, select

        from tollway.ledger.database import Database
        from tollway.ledger.queries import usage
        from tollway.ledger.schema import requests

        database = Database(f"sqlite:///{self.data_dir / 'tollway.db'}")
        try:
            rows = usage(database.engine, since_ms=since_ms, until_ms=int(time.time() * 1000) + 1)
            with database.engine.connect() as conn:
                count = conn.execute(select(func.count()).select_from(requests)).scalar_one()
        finally:
            database.engine.dispose()
        return {"rollup_requests": int(rows[0]["requests"]) if rows else 0, "rows": int(count)}

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        self.tmp.cleanup()


def system_busy_s() -> float:
    """CPU seconds spent busy by the whole machine since boot (all cores)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class CpuMeter:
    """CPU used during a phase by the gateway, by our other processes, and by everyone else.

    "Other" load is what the rest of the machine (e.g. a test suite) took: if it is
    high, the phase was disturbed and its figures should be repeated.
    """

    def __init__(self, gateway: Proc | None, ours: list[Proc]) -> None:
        self.gateway, self.ours = gateway, ours

    def _ours_s(self) -> float:
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        return own + sum(p.cpu_s() for p in self.ours)

    def __enter__(self) -> CpuMeter:
        self._t0 = time.perf_counter()
        self._busy0, self._ours0 = system_busy_s(), self._ours_s()
        self._gw0 = self.gateway.cpu_s() if self.gateway else 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.elapsed_s = time.perf_counter() - self._t0
        self.gateway_s = (self.gateway.cpu_s() if self.gateway else 0.0) - self._gw0
        ours = self._ours_s() - self._ours0
        self.other_cores = max(0.0, system_busy_s() - self._busy0 - ours) / self.elapsed_s

    @property
    def gateway_cores(self) -> float:
        return self.gateway_s / self.elapsed_s


async def quiet_phase(
    fn: Callable[[], Awaitable[T]],
    meter: Callable[[], CpuMeter],
    *,
    retries: int,
    noise_limit: float,
    on_attempt: Callable[[T, CpuMeter, bool], None] = lambda *_: None,
) -> tuple[T, CpuMeter]:
    """Run `fn` under a `CpuMeter`; repeat it (up to `retries` times) while other processes
    used more than `noise_limit` cores. `on_attempt(result, meter, repeating)` sees each try."""
    for attempt in range(retries + 1):
        with meter() as m:
            result = await fn()
        repeating = m.other_cores > noise_limit and attempt < retries
        on_attempt(result, m, repeating)
        if not repeating:
            return result, m
    raise AssertionError("unreachable")
