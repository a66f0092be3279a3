"""Gateway overhead against the simulated upstream, measured in the same run.

    python -m benchmarks.gateway [--rates 200,500,1000,2000] [--duration 8] [--rounds 3] [--quick]

Starts a zero-latency simulator, a streaming simulator and `tollway serve` as
subprocesses; then, per rate, sends the same ~1 KB chat request open-loop to the
simulator and through the gateway (interleaved), finds peak throughput with h2load,
measures streaming TTFT overhead, and checks the ledger recorded every request.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import orjson
from rich.console import Console

from benchmarks import h2load as h2
from benchmarks.loadgen import Target, open_loop
from benchmarks.report import cpu_reference_ms, machine, write_json
from benchmarks.stack import CpuMeter, Proc, Stack, quiet_phase
from benchmarks.streams import StreamTarget, stream_ttft
from benchmarks.summary import summarise

T = TypeVar("T")
PATH = "/v1/chat/completions"


def chat_body(model: str, *, stream: bool = False) -> bytes:
    """The benchmark's chat request: a short system prompt and a ~1 KB user prompt."""
    text = "Summarise the following notes in one sentence. " + " ".join(
        f"Note {i}: the quarterly report shows steady growth in region {i % 7}." for i in range(15)
    )
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": text},
        ],
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


class Run:
    """One benchmark run: the stack, the figures, and what the ledger must hold."""

    def __init__(self, args: argparse.Namespace, stack: Stack, console: Console) -> None:
        self.args, self.stack, self.console = args, stack, console
        self.figures: dict[str, Any] = {"machine": machine(), "args": vars(args)}
        self.answered = self.seen = 0  # gateway requests: the ledger must hold between the two

    def count(self, answered: int, seen: int) -> None:
        self.answered += answered
        self.seen += seen

    async def phase(
        self, label: str, fn: Callable[[], Awaitable[T]], tally: Callable[[T], tuple[int, int]]
    ) -> tuple[T, CpuMeter]:
        """Run `fn`, repeated while other processes took CPU; `tally` gives how many gateway
        requests an attempt had answered and sent (every attempt reaches the ledger)."""

        def on_attempt(result: T, meter: CpuMeter, repeating: bool) -> None:
            self.count(*tally(result))
            if repeating:
                self.console.print(
                    f"[yellow]{label}: disturbed (other processes used "
                    f"{meter.other_cores:.2f} cores); repeating[/]"
                )

        return await quiet_phase(
            fn,
            lambda: CpuMeter(self.gateway, self.stack.procs),
            retries=self.args.retries,
            noise_limit=self.args.noise_limit,
            on_attempt=on_attempt,
        )

    def start(self) -> None:
        """Simulators, config, gateway, a user key (and one request proving it works)."""
        stack = self.stack
        self.sim = stack.simulator("upstream")
        self.sim_stream = stack.simulator(
            "stream-upstream", ttft_ms=self.args.ttft_ms, tokens_per_s=self.args.tokens_per_s
        )
        config = stack.write_config(
            {"sim": self.sim, "stream": self.sim_stream},
            budgets=self.args.budgets,
            rules=self.args.rules,
        )
        self.started_ms = int(time.time() * 1000)
        self.gateway: Proc = stack.gateway(config, self.args.server)
        self.figures["gateway_rss_mib"] = {"idle": round(self.gateway.rss_mib(), 1)}
        self.key = stack.create_key()
        stack.wait_key(self.gateway, self.key, chat_body("gpt-sim"))
        self.count(1, 1)
        pinning = "upstreams + load generator on core 0, gateway on core 1"
        self.figures["pinning"] = pinning if stack.pin else "none"
        self.console.print(f"[dim]pinning: {self.figures['pinning']}[/]")

    def targets(self) -> tuple[Target, Target]:
        """The same chat request, straight to the simulator and through the gateway."""
        body = chat_body("gpt-sim")
        auth = {"authorization": f"Bearer {self.key}", "content-type": "application/json"}
        upstream = self.stack.upstream_headers()
        return (
            Target("direct", "127.0.0.1", self.sim.port, PATH, upstream, body),
            Target("gateway", "127.0.0.1", self.gateway.port, PATH, auth, body),
        )

    async def fixed_rates(self, direct: Target, gateway: Target) -> None:
        """Open-loop at each rate, --rounds times: p50/p90/p99 direct and through the gateway."""
        args = self.args
        rounds: dict[int, list[dict[str, Any]]] = {rate: [] for rate in args.rates}
        for n in range(args.rounds):
            for rate in args.rates:
                warm = await open_loop([direct, gateway], rate, args.warmup)  # discarded
                self.count(warm[1].responses, warm[1].scheduled)
                (d, g), meter = await self.phase(
                    f"{rate} RPS",
                    functools.partial(open_loop, [direct, gateway], rate, args.duration),
                    lambda res: (res[1].responses, res[1].scheduled),
                )
                dd, gd = d.as_dict(), g.as_dict()
                row = {
                    "rate": rate,
                    "direct": dd,
                    "gateway": gd,
                    "added_p50_ms": round(gd["latency_ms"]["p50"] - dd["latency_ms"]["p50"], 3),
                    "added_p99_ms": round(gd["latency_ms"]["p99"] - dd["latency_ms"]["p99"], 3),
                    "gateway_cpu_cores": round(meter.gateway_cores, 3),
                    "other_load_cores": round(meter.other_cores, 3),
                }
                rounds[rate].append(row)
                direct.close()  # a fresh pool per rate: an overloaded rate leaves no backlog
                gateway.close()
                behind = " [red](generator fell behind)[/]" if d.behind or g.behind else ""
                self.console.print(
                    f"round {n + 1}, {rate:>5} RPS: p99 direct {dd['latency_ms']['p99']:.2f} ms, "
                    f"gateway {gd['latency_ms']['p99']:.2f} ms; added p50 "
                    f"{row['added_p50_ms']:.2f} ms, p99 {row['added_p99_ms']:.2f} ms{behind}"
                )
        self.figures["fixed_rate_rounds"] = rounds
        self.figures["fixed_rate"] = [
            median_row(rows, args.noise_limit) for rows in rounds.values()
        ]

    async def saturate(self, direct: Target, gateway: Target) -> None:
        """Closed loop with N connections: peak req/s direct and through the gateway."""
        out: dict[str, Any] = {}
        for target in (direct, gateway):
            is_gateway = target is gateway
            conns = self.args.connections
            warm = await h2.closed(target, conns, requests=conns * 20)
            if is_gateway:
                self.count(*_answered_sent(warm))
            result, meter = await self.phase(
                f"saturation {target.name}",
                functools.partial(h2.closed, target, conns, duration=self.args.saturation_s),
                _answered_sent if is_gateway else lambda _: (0, 0),
            )
            if is_gateway:
                result["gateway_cpu_us_per_req"] = round(
                    meter.gateway_s / max(1, result["ok"]) * 1e6
                )
                result["gateway_cpu_cores"] = round(meter.gateway_cores, 3)
                result["gateway_rss_mib"] = round(self.gateway.rss_mib(), 1)
            result["other_load_cores"] = round(meter.other_cores, 3)
            out[target.name] = result
            self.console.print(f"saturation {target.name}: {result['rps']:,.0f} req/s")
        self.figures["saturation"] = out

    async def streaming(self) -> None:
        """TTFT of streamed chats, direct and through the gateway, interleaved."""
        args = self.args
        auth = {"authorization": f"Bearer {self.key}", "content-type": "application/json"}
        direct = StreamTarget(
            "direct",
            f"http://127.0.0.1:{self.sim_stream.port}{PATH}",
            self.stack.upstream_headers(),
            chat_body("gpt-sim", stream=True),
        )
        gateway = StreamTarget(
            "gateway",
            f"http://127.0.0.1:{self.gateway.port}{PATH}",
            auth,
            chat_body("gpt-sim-stream", stream=True),
        )
        (d, g), meter = await self.phase(
            "streaming",
            lambda: stream_ttft([direct, gateway], args.streams, args.stream_rate),
            lambda res: (res[1].ok, args.streams),
        )
        dd, gd = d.as_dict(), g.as_dict()
        self.figures["streaming"] = {
            "upstream_ttft_ms": args.ttft_ms,
            "upstream_tokens_per_s": args.tokens_per_s,
            "rate": args.stream_rate,
            "direct": dd,
            "gateway": gd,
            "added_ttft_p50_ms": round(gd["ttft_ms"]["p50"] - dd["ttft_ms"]["p50"], 3),
            "added_ttft_p99_ms": round(gd["ttft_ms"]["p99"] - dd["ttft_ms"]["p99"], 3),
            "other_load_cores": round(meter.other_cores, 3),
        }
        s = self.figures["streaming"]
        self.console.print(
            f"streaming: TTFT p50 direct {dd['ttft_ms']['p50']:.2f} ms, gateway "
            f"{gd['ttft_ms']['p50']:.2f} ms; added p50 {s['added_ttft_p50_ms']:.2f} ms, "
            f"p99 {s['added_ttft_p99_ms']:.2f} ms"
        )

    def check_ledger(self) -> None:
        """Stop the gateway (it flushes on SIGINT) and count what the ledger holds."""
        self.figures["gateway_rss_mib"]["end"] = round(self.gateway.rss_mib(), 1)
        self.gateway.stop()
        counts = self.stack.ledger_counts(self.started_ms)
        ok = (
            self.answered <= counts["rows"] <= self.seen
            and counts["rollup_requests"] == counts["rows"]
        )
        self.figures["ledger"] = {
            **counts,
            "answered": self.answered,
            "sent": self.seen,
            "complete": ok,
        }


def _answered_sent(result: dict[str, Any]) -> tuple[int, int]:
    """(answered, possibly seen by the server) of a closed-loop result."""
    answered = result.get("done", result["ok"] + result["errors"])
    return answered, result.get("sent_max", answered + result.get("in_flight_at_cutoff", 0))


def median_row(all_rows: list[dict[str, Any]], noise_limit: float) -> dict[str, Any]:
    """One rate's figures over its rounds: medians of the undisturbed rounds (of all rounds
    if every one was disturbed), with the spread of the added p99 over all rounds."""
    med = statistics.median
    rows = [r for r in all_rows if r["other_load_cores"] <= noise_limit] or all_rows

    def path(name: str) -> dict[str, Any]:
        return {
            "latency_ms": {
                q: round(med(r[name]["latency_ms"][q] for r in rows), 3)
                for q in ("p50", "p90", "p99", "p99.9")
            },
            "achieved_rps": min(r[name]["achieved_rps"] for r in rows),
            "generator_behind": any(r[name]["generator_behind"] for r in rows),
        }

    return {
        "rate": rows[0]["rate"],
        "rounds": len(all_rows),
        "rounds_used": len(rows),
        "disturbed": all(r["other_load_cores"] > noise_limit for r in rows),
        "direct": path("direct"),
        "gateway": path("gateway"),
        "added_p50_ms": round(med(r["added_p50_ms"] for r in rows), 3),
        "added_p99_ms": round(med(r["added_p99_ms"] for r in rows), 3),
        "added_p99_range_ms": [
            min(r["added_p99_ms"] for r in all_rows),
            max(r["added_p99_ms"] for r in all_rows),
        ],
        "gateway_cpu_cores": round(med(r["gateway_cpu_cores"] for r in rows), 3),
        "other_load_cores": round(med(r["other_load_cores"] for r in rows), 3),
    }


async def measure(run: Run) -> None:
    direct, gateway = run.targets()
    try:
        await run.fixed_rates(direct, gateway)
        await run.saturate(direct, gateway)
        await run.streaming()
    finally:
        direct.close()
        gateway.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.gateway",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rates", default="200,500,1000,2000", help="requests/s, comma-separated")
    p.add_argument("--duration", type=float, default=8, help="seconds measured per rate")
    p.add_argument("--rounds", type=int, default=3, help="passes over the rates (medians kept)")
    p.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per rate")
    p.add_argument("--connections", type=int, default=64, help="saturation connections")
    p.add_argument("--saturation-s", type=float, default=8, help="saturation seconds")
    p.add_argument("--streams", type=int, default=200, help="streams per path")
    p.add_argument("--stream-rate", type=float, default=20, help="streams/s per path")
    p.add_argument("--ttft-ms", type=float, default=50, help="streaming upstream TTFT")
    p.add_argument("--tokens-per-s", type=float, default=200, help="streaming upstream speed")
    p.add_argument(
        "--server",
        default="uvicorn",
        help="uvicorn (tollway serve), uvicorn-<loop>-<http> (uvicorn CLI) or granian",
    )
    p.add_argument(
        "--budgets",
        choices=("off", "memory", "redis"),
        default="off",
        help="budgets on the benchmark key: none, in-process counters, or Redis",
    )
    p.add_argument(
        "--rules", action="store_true", help="a realistic set of ten steering rules (none match)"
    )
    p.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin to cores")
    p.add_argument("--retries", type=int, default=2, help="repeats of a disturbed phase")
    p.add_argument("--noise-limit", type=float, default=0.25, help="other load (cores) allowed")
    p.add_argument("--quick", action="store_true", help="a < 1 minute smoke run")
    p.add_argument("--output", default="latest.json", help="file name under benchmarks/results")
    args = p.parse_args(argv)
    if args.quick:
        args.rates, args.duration, args.warmup, args.rounds = "500,2000", 3, 1, 1
        args.saturation_s, args.streams, args.retries = 3, 40, 0
    args.rates = [int(r) for r in str(args.rates).split(",") if r.strip()]
    return args


def run_async(coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro` on uvloop when installed (a cheaper load generator), else asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console(width=150)
    core = 1 if args.pin and len(os.sched_getaffinity(0)) >= 2 else None
    reference = {"start": cpu_reference_ms(core)}
    stack = Stack(pin=args.pin)
    run = Run(args, stack, console)
    try:
        run.start()
        run_async(measure(run))
        run.check_ledger()
    finally:
        stack.close()
    reference["end"] = cpu_reference_ms(core)
    run.figures["cpu_reference_ms"] = reference
    summarise(console, run.figures)
    path = write_json(args.output, run.figures)
    console.print(f"[dim]raw figures: {path}[/]")


if __name__ == "__main__":
    main()
