"""ASGI servers for the gateway, same app and upstream: peak req/s, p99 at a fixed rate, RSS.

    python -m benchmarks.servers [--rate 1000] [--saturation-s 8] [--quick]

Servers: `tollway serve` (uvicorn, configured for uvloop + httptools), the uvicorn
CLI with uvloop + httptools and with asyncio + h11, and granian (Rust HTTP, ASGI).
Then the JSON micro-benchmark (`benchmarks.jsonbench`).
"""

from __future__ import annotations

import argparse
import functools
import os
from typing import Any

from rich.console import Console

from benchmarks import h2load as h2
from benchmarks import jsonbench
from benchmarks.gateway import PATH, chat_body, run_async
from benchmarks.loadgen import Target, open_loop
from benchmarks.report import cpu_reference_ms, fmt, machine, print_machine, table, write_json
from benchmarks.stack import CpuMeter, Proc, Stack, quiet_phase

SERVERS = {
    "uvicorn": "tollway serve (uvicorn.Config asks for uvloop + httptools)",
    "uvicorn-uvloop-httptools": "uvicorn CLI --loop uvloop --http httptools",
    "uvicorn-asyncio-h11": "uvicorn CLI --loop asyncio --http h11",
    "granian": "granian --interface asgi --loop uvloop --http 1",
}


async def measure(
    target: Target, gateway: Proc, stack: Stack, args: argparse.Namespace
) -> dict[str, Any]:
    """Warm up, saturate (closed loop, best of --repeats), then hold a fixed rate (open loop).

    Each measurement is repeated while other processes took more than --noise-limit cores.
    """
    conns = args.connections
    quiet = functools.partial(
        quiet_phase,
        meter=lambda: CpuMeter(gateway, stack.procs),
        retries=args.retries,
        noise_limit=args.noise_limit,
    )
    await h2.closed(target, conns, requests=conns * 20)
    best: dict[str, Any] | None = None
    for _ in range(args.repeats):
        sat, meter = await quiet(
            functools.partial(h2.closed, target, conns, duration=args.saturation_s)
        )
        sat["gateway_cpu_us_per_req"] = round(meter.gateway_s / max(1, sat["ok"]) * 1e6)
        sat["other_load_cores"] = round(meter.other_cores, 3)
        if best is None or sat["rps"] > best["rps"]:
            best = sat
    assert best is not None
    best["rss_mib"] = round(gateway.rss_mib(), 1)
    await open_loop([target], args.rate, 1.0)  # back to the fixed rate before measuring it
    (fixed,), meter = await quiet(functools.partial(open_loop, [target], args.rate, args.duration))
    fixed_figures = fixed.as_dict()
    fixed_figures["gateway_cpu_cores"] = round(meter.gateway_cores, 3)
    fixed_figures["other_load_cores"] = round(meter.other_cores, 3)
    target.close()
    return {"saturation": best, "fixed_rate": fixed_figures}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.servers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--servers", default=",".join(SERVERS), help="comma-separated")
    p.add_argument("--rate", type=float, default=1000, help="fixed open-loop rate, requests/s")
    p.add_argument("--duration", type=float, default=8, help="seconds at the fixed rate")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--saturation-s", type=float, default=6)
    p.add_argument("--repeats", type=int, default=2, help="saturation runs; the best counts")
    p.add_argument("--no-pin", dest="pin", action="store_false")
    p.add_argument("--retries", type=int, default=2, help="repeats of a disturbed measurement")
    p.add_argument("--noise-limit", type=float, default=0.25, help="other load (cores) allowed")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.saturation_s, args.repeats, args.retries = 3, 3, 1, 0
    console = Console(width=130)
    figures: dict[str, Any] = {"machine": machine(), "args": vars(args), "servers": {}}
    core = 1 if args.pin and len(os.sched_getaffinity(0)) >= 2 else None
    figures["cpu_reference_ms"] = {"start": cpu_reference_ms(core)}
    stack = Stack(pin=args.pin)
    try:
        sim = stack.simulator("upstream")
        config = stack.write_config({"sim": sim})
        key = ""
        for server in args.servers.split(","):
            gateway = stack.gateway(config, server)
            key = key or stack.create_key()
            stack.wait_key(gateway, key, chat_body("gpt-sim"))
            auth = {"authorization": f"Bearer {key}", "content-type": "application/json"}
            target = Target(server, "127.0.0.1", gateway.port, PATH, auth, chat_body("gpt-sim"))
            result = run_async_value(measure(target, gateway, stack, args))
            figures["servers"][server] = {"command": SERVERS[server], **result}
            console.print(
                f"{server}: {result['saturation']['rps']:,.0f} req/s peak, p99 "
                f"{result['fixed_rate']['latency_ms']['p99']:.2f} ms at {args.rate:g} RPS"
            )
            gateway.stop()
            stack.procs.remove(gateway)
    finally:
        stack.close()
    figures["cpu_reference_ms"]["end"] = cpu_reference_ms(core)
    figures["json_ns_per_op"] = jsonbench.run(quick=args.quick)
    print_machine(console, figures["machine"])
    ref = figures["cpu_reference_ms"]
    console.print(f"[dim]CPU yardstick {ref['start']:g} ms before, {ref['end']:g} ms after[/]")
    console.print(
        f"[dim]pinning: {'load + upstream core 0, server core 1' if stack.pin else 'none'}[/]"
    )
    rows = []
    for server, r in figures["servers"].items():
        sat, fixed = r["saturation"], r["fixed_rate"]
        lat = fixed["latency_ms"]
        rows.append(
            [
                server,
                f"{sat['rps']:,.0f}",
                str(sat["gateway_cpu_us_per_req"]),
                f"{fmt(lat['p50'])} / {fmt(lat['p99'])}",
                fmt(fixed["gateway_cpu_cores"]),
                f"{sat['rss_mib']:.0f}",
                fmt(max(sat["other_load_cores"], fixed["other_load_cores"])),
            ]
        )
    columns = ["server", "peak req/s", "CPU µs/req", f"p50 / p99 ms @ {args.rate:g}/s"]
    columns += ["cores @ rate", "RSS MiB", "other load"]
    console.print(table("ASGI servers (gateway, metering on)", columns, rows))
    jsonbench.print_results(console, figures["json_ns_per_op"])
    console.print(f"[dim]raw figures: {write_json('servers.json', figures)}[/]")


def run_async_value(coro: Any) -> Any:
    """`run_async` for a coroutine with a result."""
    box: list[Any] = []

    async def keep() -> None:
        box.append(await coro)

    run_async(keep())
    return box[0]


if __name__ == "__main__":
    main()
