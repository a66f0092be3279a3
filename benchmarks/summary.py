"""The compact tables printed at the end of `python -m benchmarks.gateway`, and the targets."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from benchmarks.report import fmt, print_machine, table

ADDED_P99_TARGET_MS = {500: 1.0, 2000: 5.0}
PEAK_TARGET_RPS = 2300
DESIGN_PEAK_RPS = 5000


def summarise(console: Console, f: dict[str, Any]) -> None:
    """The compact tables printed at the end of a run."""
    print_machine(console, f["machine"])
    ref = f["cpu_reference_ms"]
    console.print(
        f"[dim]server: {f['args']['server']} · pinning: {f['pinning']} · CPU yardstick "
        f"{ref['start']:g} ms before, {ref['end']:g} ms after (higher = machine busier)[/]"
    )
    rows = []
    for r in f["fixed_rate"]:
        d, g = r["direct"]["latency_ms"], r["gateway"]["latency_ms"]
        behind = r["direct"]["generator_behind"] or r["gateway"]["generator_behind"]
        rows.append(
            [
                f"{r['rate']:,}" + (" !" if behind else "") + (" ~" if r["disturbed"] else ""),
                *(fmt(x) for x in (d["p50"], d["p90"], d["p99"], g["p50"], g["p90"], g["p99"])),
                fmt(r["added_p50_ms"]),
                fmt(r["added_p99_ms"]),
                "..".join(fmt(x, 1) for x in r["added_p99_range_ms"]),
                f"{r['gateway']['achieved_rps']:,.0f}",
                fmt(r["gateway_cpu_cores"]),
                f"{r['rounds_used']}/{r['rounds']}",
                fmt(r["other_load_cores"]),
            ]
        )
    columns = ["RPS", "direct p50", "p90", "p99", "gateway p50", "p90", "p99", "added p50"]
    columns += ["added p99", "(range)", "sent/s", "gw cores", "rounds", "other load"]
    title = (
        "Fixed rate, open loop, ms: medians of the undisturbed rounds "
        "(! = generator fell behind, ~ = every round disturbed)"
    )
    console.print(table(title, columns, rows))
    rows = []
    for name, s in f["saturation"].items():
        rows.append(
            [
                name,
                f"{s['rps']:,.0f}",
                fmt(s["latency_ms"]["mean"]),
                f"{s['ok']:,} / {s['errors']:,}",
                str(s.get("gateway_cpu_us_per_req", "-")),
                str(s.get("gateway_rss_mib", "-")),
                fmt(s["other_load_cores"]),
            ]
        )
    tool = next(iter(f["saturation"].values()))["tool"]
    conns = next(iter(f["saturation"].values()))["connections"]
    columns = [
        "path",
        "req/s",
        "mean ms",
        "ok / errors",
        "gw CPU µs/req",
        "gw RSS MiB",
        "other load",
    ]
    console.print(table(f"Saturation ({tool}, {conns} connections, closed loop)", columns, rows))
    s = f["streaming"]
    rows = [
        [name, fmt(s[name]["ttft_ms"]["p50"]), fmt(s[name]["ttft_ms"]["p99"]), str(s[name]["ok"])]
        for name in ("direct", "gateway")
    ]
    rows.append(["added", fmt(s["added_ttft_p50_ms"]), fmt(s["added_ttft_p99_ms"]), ""])
    title = f"Streaming TTFT (upstream ttft {s['upstream_ttft_ms']:g} ms, {s['rate']:g} streams/s)"
    console.print(table(title, ["path", "TTFT p50 ms", "TTFT p99 ms", "streams"], rows))
    led = f["ledger"]
    verdict = "[green]complete[/]" if led["complete"] else "[red]MISMATCH[/]"
    console.print(
        f"ledger: {led['rows']:,} request rows, rollups {led['rollup_requests']:,}; gateway "
        f"answered {led['answered']:,} (≤ {led['sent']:,} sent) → {verdict}"
    )
    console.print(table("Targets", ["target", "measured", "met"], targets(f)))


def targets(f: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in f["fixed_rate"]:
        limit = ADDED_P99_TARGET_MS.get(r["rate"])
        if limit is not None:
            met = r["added_p99_ms"] <= limit
            rows.append(
                [
                    f"added p99 ≤ {limit:g} ms at {r['rate']:,} RPS",
                    f"{r['added_p99_ms']:.2f} ms",
                    "yes" if met else "[red]no[/]",
                ]
            )
    peak = f["saturation"]["gateway"]["rps"]
    for goal, name in ((PEAK_TARGET_RPS, "peak"), (DESIGN_PEAK_RPS, "DESIGN.md peak")):
        rows.append(
            [
                f"{name} ≥ {goal:,} req/s (metering on)",
                f"{peak:,.0f} req/s",
                "yes" if peak >= goal else "[red]no[/]",
            ]
        )
    return rows
