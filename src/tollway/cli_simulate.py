"""`tollway simulate-org`: a synthetic organisation's traffic, backfilled into the ledger or
sent live to a running gateway, with the ground truth (who games how) as a labels file."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from tollway.cli_support import cli_settings, err, open_database, parse_when
from tollway.errors import ConfigError
from tollway.insights.in_house import daily_tracker
from tollway.settings import Settings

if TYPE_CHECKING:
    from tollway.insights.orgsim import Episode, OrgTruth, SimModels

console = Console()


def simulate_org(
    config: Annotated[
        str | None, typer.Option("--config", "-c", help="YAML config file (or TOLLWAY_CONFIG).")
    ] = None,
    users: Annotated[int, typer.Option(min=1, help="Members of the organisation.")] = 200,
    teams: Annotated[int, typer.Option(min=1, help="Teams (each in its own timezone).")] = 8,
    days: Annotated[float, typer.Option(min=0.01, help="Backfill: days of history.")] = 14,
    gamers: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of members who game.")
    ] = 0.08,
    seed: Annotated[int, typer.Option(help="Same seed, same organisation and traffic.")] = 7,
    org: Annotated[str, typer.Option(help="The organisation's name.")] = "simorg",
    labels: Annotated[
        str | None, typer.Option(help="Write the ground truth (users, gamers, episodes) here.")
    ] = None,
    live: Annotated[
        bool,
        typer.Option("--live/--backfill", help="Drive a running gateway, or write the ledger."),
    ] = False,
    end: Annotated[
        str | None, typer.Option(help="Backfill: end of the history (ISO; default now).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Backfill: generator processes (0 = none).")
    ] = None,
    url: Annotated[str | None, typer.Option(help="Live: the gateway's base URL.")] = None,
    admin_key: Annotated[
        str | None, typer.Option(help="Live: an admin key (or TOLLWAY_ADMIN_KEY).")
    ] = None,
    minutes: Annotated[float, typer.Option(help="Live: wall-clock minutes to run.")] = 5.0,
    speed: Annotated[float, typer.Option(help="Live: simulated time per wall time.")] = 1.0,
    start: Annotated[
        str | None, typer.Option(help="Live: simulated start time (ISO; default now).")
    ] = None,
    outcomes: Annotated[
        bool, typer.Option("--outcomes/--no-outcomes", help="Write or post outcome events.")
    ] = True,
) -> None:
    """Simulate an organisation: members who work, game and ship (see the README)."""
    from tollway.insights.orgsim import OrgSpec, SimModels, backfill, build_org

    settings = cli_settings(config)
    try:
        truth = build_org(OrgSpec(users=users, teams=teams, gamer_share=gamers, seed=seed, org=org))
        models = SimModels.from_settings(settings)
    except (ValueError, ConfigError) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    summary = Table(title=f"Simulated organisation {org!r}", show_header=False)
    summary.add_row("users", f"{users:,}")
    summary.add_row("teams", f"{teams:,}")
    by_kind = truth.gamers_by_kind()
    summary.add_row("gamers", f"{len(truth.gamers()):,}")
    for kind, count in by_kind.items():
        summary.add_row(f"  {kind}", f"{count:,}")
    summary.add_row("service keys", f"{sum(1 for m in truth.members if m.service_job):,}")
    episodes: list[Episode] = []
    if live:
        rows, episodes = _live(
            settings, truth, models, url, admin_key, minutes, speed, start, outcomes
        )
        for row in rows:
            summary.add_row(*row)
    else:
        end_ms = _when(end, "--end") if end else int(time.time() // 60 * 60_000)
        database, _ = open_database(settings)
        result = backfill(
            database,
            truth,
            models,
            end_ms=end_ms,
            days=days,
            workers=workers,
            write_outcomes=outcomes,
            quality_window_days=settings.insights.impact.quality_window_days,
            daily=daily_tracker(settings),
        )
        episodes = result.episodes
        summary.add_row("days", f"{days:g}")
        summary.add_row("rows", f"{result.rows:,}")
        summary.add_row("outcomes", f"{result.outcomes:,} ({result.outcomes_written:,} new)")
        summary.add_row("keys written", f"{result.keys_written:,}")
        summary.add_row("seconds", f"{result.seconds:.1f}")
        summary.add_row("rows/s", f"{result.rows_per_s:,.0f}")
    console.print(summary)
    if labels:
        truth.write_labels(labels, episodes)
        err.print(f"labels written to {labels}")


def _live(
    settings: Settings,
    truth: OrgTruth,
    models: SimModels,
    url: str | None,
    admin_key: str | None,
    minutes: float,
    speed: float,
    start: str | None,
    outcomes: bool,
) -> tuple[list[tuple[str, str]], list[Episode]]:
    """Drive the gateway; the summary's rows and the episodes played."""
    from tollway.cli_budgets import admin_key_for
    from tollway.insights.orgsim import run_live

    base = url or f"http://{settings.server.host}:{settings.server.port}"
    key = admin_key or os.environ.get("TOLLWAY_ADMIN_KEY") or admin_key_for(settings)
    if not key:
        err.print("[red]--live needs an admin key: --admin-key or TOLLWAY_ADMIN_KEY[/]")
        raise typer.Exit(2)
    result = run_live(
        base,
        key,
        truth,
        models,
        minutes=minutes,
        speed=speed,
        sim_start_ms=_when(start, "--start") if start else None,
        post_outcomes=outcomes,
    )
    statuses = ", ".join(f"{s or 'failed'}: {n:,}" for s, n in sorted(result.statuses.items()))
    rows = [
        ("requests sent", f"{result.sent:,}"),
        ("keys created", f"{result.keys_created:,}"),
        ("active users", f"{len(result.users):,}"),
        ("statuses", statuses or "-"),
        ("outcomes posted", f"{result.outcomes_posted:,}"),
        ("late requests", f"{result.late:,}"),
        ("seconds", f"{result.seconds:.1f}"),
    ]
    return rows, result.episodes


def _when(value: str, option: str) -> int:
    try:
        return parse_when(value)
    except ValueError as exc:
        err.print(f"[red]{option}: {exc}[/]")
        raise typer.Exit(2) from None
