"""`tollway flags` (the gaming review list) and `tollway alerts` (alert history)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tollway.cli_support import ConfigOpt, cli_settings, err, fmt_ms, open_database, parse_since

console = Console()
SinceOpt = Annotated[str, typer.Option(help="Start: a duration back (7d, 24h) or ISO date.")]
DAY_MS = 86_400_000

flags_app = typer.Typer(help="The gaming review list: flagged user-days and their evidence.")
alerts_app = typer.Typer(help="Alert history: spikes, budget thresholds, forecasts.")


def _since(value: str) -> int:
    try:
        return parse_since(value)
    except ValueError as exc:
        err.print(f"[red]--since: {exc}[/]")
        raise typer.Exit(2) from None


@flags_app.callback(invoke_without_command=True)
def flags(
    ctx: typer.Context,
    since: SinceOpt = "7d",
    status: Annotated[str | None, typer.Option(help="open, confirmed or dismissed.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team.")] = None,
    scan: Annotated[
        bool, typer.Option("--scan", help="Rescan the ledger for these days first.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Flagged user-days, highest score first. Flags never punish: they await review."""
    if ctx.invoked_subcommand is not None:
        return
    from tollway.insights.flag_scan import flag_days
    from tollway.ledger.flags import list_flags

    settings = cli_settings(config)
    database, _ = open_database(settings)
    since_ms = _since(since)
    if scan:
        now = int(time.time() * 1000)
        days = range(since_ms - since_ms % DAY_MS, now, DAY_MS)
        insights = settings.insights
        flag_days(database.engine, days, insights.detection, insights.impact, now)
    rows = list_flags(database.engine, since_ms=since_ms, status=status, team=team)
    table = Table("flag", "team", "score", "tokens", "credited", "signals", "status")
    for row in rows:
        signals = ", ".join(
            f"{name}={evidence['value']:g}" for name, evidence in row["signals"].items()
        )
        table.add_row(
            row["flag_id"],
            row["team"],
            f"{row['score']:.2f}",
            f"{row['tokens']:,}",
            f"{row['credited_tokens']:,}",
            signals,
            row["status"],
        )
    console.print(table if rows else "No flags in this period.")


@flags_app.command("review")
def flags_review(
    flag_id: str,
    status: Annotated[str, typer.Option(help="confirmed or dismissed.")],
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
    reviewer: Annotated[str, typer.Option(help="Who reviewed it.")] = "cli",
    config: ConfigOpt = None,
) -> None:
    """Record a reviewer's verdict on a flag."""
    from tollway.ledger.flags import review_flag

    database, _ = open_database(cli_settings(config))
    try:
        found = review_flag(
            database.engine, flag_id, status, reviewer, note, int(time.time() * 1000)
        )
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    if not found:
        err.print(f"[red]no flag {flag_id!r}[/]")
        raise typer.Exit(1)
    console.print(f"{flag_id}: {status}")


@alerts_app.callback(invoke_without_command=True)
def alerts(
    ctx: typer.Context,
    since: SinceOpt = "7d",
    state: Annotated[str | None, typer.Option(help="open or resolved.")] = None,
    kind: Annotated[str | None, typer.Option(help="spike, team_spike, budget or forecast.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Alert history, newest first: what fired, the evidence, and the feedback given."""
    if ctx.invoked_subcommand is not None:
        return
    from tollway.ledger.alerts import AlertStore

    database, _ = open_database(cli_settings(config))
    rows = AlertStore(database.engine).list(since_ms=_since(since), state=state, kind=kind)
    table = Table("alert", "opened", "kind", "subject", "severity", "state", "title", "feedback")
    for row in rows:
        table.add_row(
            row["alert_id"],
            fmt_ms(row["opened_at_ms"]),
            row["kind"],
            row["subject"],
            row["severity"],
            row["state"],
            row["title"],
            row["feedback"] or "",
        )
    console.print(table if rows else "No alerts in this period.")


@alerts_app.command("feedback")
def alerts_feedback(
    alert_id: str,
    verdict: Annotated[str, typer.Option(help="useful, false or planned.")],
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
    by: Annotated[str, typer.Option(help="Who says so.")] = "cli",
    config: ConfigOpt = None,
) -> None:
    """Record whether an alert was useful, a false alarm, or planned work."""
    from tollway.ledger.alerts import AlertStore

    database, _ = open_database(cli_settings(config))
    store = AlertStore(database.engine)
    try:
        found = store.feedback(alert_id, verdict, by, note, int(time.time() * 1000))
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    if not found:
        err.print(f"[red]no alert {alert_id!r}[/]")
        raise typer.Exit(1)
    console.print(f"{alert_id}: {verdict}")
