"""`tollway outcomes add|list` and `tollway impact`: outcomes per token, from the ledger.

Like the other report commands they open the configured database directly, so they
work whether or not a gateway runs.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from tollway.cli_support import ConfigOpt, cli_settings, err, open_database, parse_since, parse_when
from tollway.insights import impact as metrics
from tollway.insights.outcome_events import (
    KINDS,
    OutcomeEvent,
    ingest,
    invalid,
    list_outcomes,
)

outcomes_app = typer.Typer(
    help="Record and list outcomes (merged PRs, landed diffs, tickets, incidents, reverts).",
    no_args_is_help=True,
)
console = Console()


Since = Annotated[str, typer.Option(help="Start: a duration back (30d) or an ISO date.")]
Until = Annotated[str | None, typer.Option(help="End (default: now).")]


@outcomes_app.command("add")
def outcomes_add(
    outcome_id: Annotated[str, typer.Option("--id", help="Idempotency key, e.g. jira:PAY-812.")],
    kind: Annotated[str, typer.Option(help=f"One of {', '.join(KINDS)}.")],
    actor: Annotated[list[str], typer.Option(help="A gateway user (repeat for several).")],
    team: Annotated[str, typer.Option(help="The team the outcome belongs to.")],
    org: Annotated[str, typer.Option(help="The team's org.")] = "demo",
    at: Annotated[str | None, typer.Option(help="When (ISO time; default: now).")] = None,
    url: Annotated[str | None, typer.Option(help="A link to it.")] = None,
    title: Annotated[str | None, typer.Option(help="A short title.")] = None,
    size: Annotated[int, typer.Option(help="Size, e.g. lines changed.")] = 1,
    ref: Annotated[
        list[str] | None, typer.Option(help="Outcome id a revert/incident voids (repeat).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Record one outcome (stored once per id)."""
    settings = cli_settings(config)
    now = int(time.time() * 1000)
    raw: dict[str, Any] = {
        "id": outcome_id,
        "kind": kind,
        "actors": actor,
        "team": team,
        "org": org,
        "size": size,
        "occurred_at": at or now,
        "url": url,
        "title": title,
        "refs": ref or [],
    }
    try:
        event = OutcomeEvent.model_validate(raw, context={"now_ms": now})
    except ValidationError as exc:
        err.print(f"[red]{invalid(exc).message}[/]")
        raise typer.Exit(2) from None
    database, _ = open_database(settings)
    result = ingest(
        database.engine,
        [event],
        now_ms=now,
        quality_window_days=settings.insights.impact.quality_window_days,
        source="cli",
    )
    console.print(f"stored {outcome_id}" if result.accepted else f"{outcome_id} was stored already")


@outcomes_app.command("list")
def outcomes_list(
    since: Since = "30d",
    until: Until = None,
    team: Annotated[str | None, typer.Option(help="Only this team.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    config: ConfigOpt = None,
) -> None:
    """Outcomes that occurred in the period, newest first."""
    since_ms, until_ms = _period(since, until)
    database, _ = open_database(cli_settings(config))
    rows = list_outcomes(
        database.engine, since_ms=since_ms, until_ms=until_ms, team=team, kind=kind, limit=limit
    )
    table = Table("occurred", "id", "kind", "org/team", "actors", "size", "state")
    for row in rows:
        state = f"voided by {row['voided_by']}" if row["voided_at_ms"] else ""
        table.add_row(
            _when(row["occurred_at_ms"]),
            row["id"],
            row["kind"],
            f"{row['org']}/{row['team']}",
            ", ".join(row["actors"]) or "(none mapped)",
            str(row["size"]),
            state,
        )
    console.print(table)


def impact(
    since: Since = "30d",
    until: Until = None,
    leaderboard: Annotated[
        bool, typer.Option("--leaderboard", help="Teams in quartile bands instead.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Outcomes per token by team (whole UTC days), or the banded leaderboard."""
    settings = cli_settings(config)
    since_ms, until_ms = _period(since, until)
    database, _ = open_database(settings)
    args: dict[str, Any] = {
        "since_ms": since_ms,
        "until_ms": until_ms,
        "config": settings.insights.impact,
    }
    if leaderboard:
        _print_bands(metrics.leaderboard(database.engine, **args))
    else:
        _print_teams(metrics.team_metrics(database.engine, **args))


def _print_teams(report: dict[str, Any]) -> None:
    table = Table("org/team", title=f"Impact {_span(report)}", title_justify="left")
    for column in (
        *("users", "outcomes", "credited tokens", "out/1M credited"),
        *("cost/outcome", "in-house", "trend"),
    ):
        table.add_column(column, justify="right")
    rows = [(f"{t['org']}/{t['team']}", t) for t in report["teams"]]
    for i, (label, row) in enumerate([*rows, ("total", report["total"])]):
        table.add_row(
            label,
            str(row["active_users"]),
            f"{row['outcomes']:,}",
            f"{row['credited_tokens']:,}",
            _num(row["outcomes_per_1m_credited"], "{:.2f}"),
            _num(row["cost_per_outcome_usd"], "${:,.2f}"),
            _num(row["in_house_share"], "{:.0%}"),
            _num(row.get("trend"), "{:+.0%}"),
            end_section=i == len(rows) - 1,
        )
    console.print(table)
    console.print(
        f"[dim]outcomes: {', '.join(report['counted_kinds'])}, attributed to AI use within "
        f"{report['attribution_hours']:g} h before, minus those voided within "
        f"{report['quality_window_days']} days; trend against the previous period[/]"
    )


def _print_bands(board: dict[str, Any]) -> None:
    table = Table("band", "teams (alphabetical)", title=f"Leaderboard {_span(board)}")
    table.title_justify = "left"
    for band in board["bands"]:
        table.add_row(band["band"], ", ".join(f"{t['org']}/{t['team']}" for t in band["teams"]))
    for reason in sorted({t["reason"] for t in board["not_compared"]}):
        names = [f"{t['org']}/{t['team']}" for t in board["not_compared"] if t["reason"] == reason]
        table.add_row(f"[dim]{reason}[/]", ", ".join(names))
    console.print(table)
    console.print(
        f"[dim]bands of {board['metric']}; teams of fewer than {board['min_group_size']} "
        "active users are not compared; no ranks[/]"
    )


def _period(since: str, until: str | None) -> tuple[int, int]:
    try:
        since_ms = parse_since(since)
        until_ms = parse_when(until, future=False) if until else int(time.time() * 1000) + 1
        metrics.period_of(since_ms, until_ms)
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    return since_ms, until_ms


def _span(report: dict[str, Any]) -> str:
    last_day = report["until_ms"] - 86_400_000
    return f"{_when(report['since_ms'], '%Y-%m-%d')} .. {_when(last_day, '%Y-%m-%d')} (UTC)"


def _when(ms: int, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime(fmt)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)
