"""The `tollway` command line: a thin layer over library functions.

Commands that read or change stored state (keys, usage) open the same
database the gateway uses (`--config`, `TOLLWAY_CONFIG`, `TOLLWAY_DATABASE_URL`,
`TOLLWAY_DATA_DIR`), so they work whether or not the gateway is running.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tollway.cli_demo import demo
from tollway.cli_impact import impact, outcomes_app
from tollway.cli_insights import alerts_app, flags_app
from tollway.cli_simulate import simulate_org
from tollway.cli_support import (
    ConfigOpt,
    cli_settings,
    err,
    fmt_ms,
    open_database,
    parse_since,
    parse_when,
)
from tollway.errors import ConfigError

app = typer.Typer(help="Tollway: AI gateway and token control plane.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke virtual keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
route_app = typer.Typer(help="Inspect routing and steering.", no_args_is_help=True)
app.add_typer(route_app, name="route")
console = Console()


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.")] = None,
) -> None:
    """Run the gateway (embedded defaults: SQLite, simulated provider, demo org)."""
    from tollway.server import run_gateway

    settings = cli_settings(config)
    try:
        run_gateway(settings, host=host, port=port, console=console)
    except ConfigError as exc:
        err.print(f"[bold red]config error:[/] {exc.message}")
        raise typer.Exit(2) from None


@app.command("simulate-provider")
def simulate_provider(
    port: Annotated[int, typer.Option(help="Listen port.")] = 9000,
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    ttft_ms: Annotated[float, typer.Option(help="Time to first token, ms.")] = 0.0,
    tokens_per_s: Annotated[float, typer.Option(help="Streaming speed; 0 = instant.")] = 0.0,
    output_tokens: Annotated[int, typer.Option(help="Default completion length.")] = 32,
) -> None:
    """Run the simulated OpenAI + Anthropic provider standalone."""
    from tollway.providers.simulated import SimConfig
    from tollway.providers.simulated.server import run_standalone

    console.print(
        f"simulated provider on http://{host}:{port} (OpenAI: /v1, Anthropic: /v1/messages)"
    )
    run_standalone(
        host,
        port,
        SimConfig(ttft_ms=ttft_ms, tokens_per_s=tokens_per_s, default_output_tokens=output_tokens),
    )


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Option(help="User the key belongs to.")],
    team: Annotated[str, typer.Option(help="The user's team.")],
    org: Annotated[str, typer.Option(help="The team's org.")] = "demo",
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    role: Annotated[
        str, typer.Option(help="user, admin, org_admin or team_admin (prompt-log readers).")
    ] = "user",
    expires: Annotated[
        str | None, typer.Option(help="Expiry: a duration from now (30d, 12h) or an ISO date.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    expires_ms = _when_option(expires, "--expires")
    _, store = open_database(cli_settings(config))
    try:
        key, info = store.create(user, team, org, name=name, role=role, expires_at_ms=expires_ms)
    except ValueError as exc:
        err.print(f"[red]--role: {exc}[/]")
        raise typer.Exit(2) from None
    console.print(f"[bold green]{key}[/]")
    err.print(f"key id {info.key_id} for {org}/{team}/{user}; store it now, it is not shown again")


@keys_app.command("list")
def keys_list(
    org: Annotated[str | None, typer.Option(help="Only this org.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team.")] = None,
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    config: ConfigOpt = None,
) -> None:
    """List keys (never their secrets)."""
    _, store = open_database(cli_settings(config))
    table = Table("key id", "prefix", "org", "team", "user", "name", "created", "expires", "state")
    now = int(time.time() * 1000)
    for k in store.list(org=org, team=team, include_revoked=all_keys):
        state = "revoked" if k.revoked_at_ms else ("active" if k.is_active(now) else "expired")
        table.add_row(
            k.key_id,
            k.prefix + "…",
            k.org,
            k.team,
            k.user,
            k.name or "",
            fmt_ms(k.created_at_ms),
            fmt_ms(k.expires_at_ms),
            state,
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, config: ConfigOpt = None) -> None:
    """Revoke a key by its id (takes effect on running gateways within a second)."""
    _, store = open_database(cli_settings(config))
    if not store.revoke(key_id):
        err.print(f"no active key with id {key_id}")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@keys_app.command("expire")
def keys_expire(
    key_id: str,
    at: Annotated[
        str | None, typer.Option(help="A duration from now (30d) or an ISO date; omit to clear.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Set (or with no --at, remove) a key's expiry."""
    expires_ms = _when_option(at, "--at")
    _, store = open_database(cli_settings(config))
    if not store.set_expiry(key_id, expires_ms):
        err.print(f"no key with id {key_id}")
        raise typer.Exit(1)
    console.print(f"{key_id} expires {fmt_ms(expires_ms) or 'never'}")


@app.command()
def usage(
    by: Annotated[
        str, typer.Option(help="Group by: comma-separated org,team,user,model,provider.")
    ] = "team",
    since: Annotated[
        str, typer.Option(help="Start: a duration back (7d, 24h) or ISO date.")
    ] = "7d",
    until: Annotated[str | None, typer.Option(help="End (default: now).")] = None,
    granularity: Annotated[str, typer.Option(help="total, hour or day.")] = "total",
    savings: Annotated[
        bool, typer.Option("--savings", help="Steered traffic and the money it saved.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Token usage and cost, from the hourly rollups."""
    from tollway.ledger.queries import usage as usage_query

    database, _ = open_database(cli_settings(config))
    group_by = [g.strip() for g in by.split(",") if g.strip()]
    try:
        rows = usage_query(
            database.engine,
            group_by=group_by,
            granularity=granularity,
            since_ms=parse_since(since),
            until_ms=parse_when(until) if until else int(time.time() * 1000) + 1,
            filters={},
        )
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    columns = [*(["bucket"] if granularity != "total" else []), *group_by]
    if savings:
        console.print(savings_table(columns, group_by, rows, granularity))
        return
    table = Table(*columns)
    for label in (
        *("requests", "input", "cached", "output", "credited"),
        *("list $", "actual $", "weighted $"),
    ):
        table.add_column(label, justify="right")
    for row in rows:
        cells = [fmt_ms(row["bucket_start_ms"])] if granularity != "total" else []
        cells += [str(row[g]) for g in group_by]
        cells += [
            f"{row['requests']:,}",
            f"{row['input_tokens']:,}",
            f"{row['cached_input_tokens']:,}",
            f"{row['output_tokens']:,}",
            f"{row['credited_tokens']:,}",
            f"{row['list_cost_usd']:,.6f}",
            f"{row['actual_cost_usd']:,.6f}",
            f"{row['weighted_charge_pusd'] / 10**12:,.6f}",
        ]
        table.add_row(*cells)
    console.print(table)


@app.command()
def budgets(
    url: Annotated[
        str | None, typer.Option(help="A running gateway (default: the configured host/port).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Every budget's use in its current window, with a progress bar."""
    from tollway.cli_budgets import admin_key_for, fetch_live, from_ledger, render

    settings = cli_settings(config)
    base = url or f"http://{settings.server.host}:{settings.server.port}"
    live = fetch_live(base, admin_key_for(settings))
    if live is not None:
        render(console, live, f"live from {base}")
    else:
        render(console, from_ledger(settings), "settled use from the ledger; no gateway answered")


@route_app.command("explain")
def route_explain(
    key: Annotated[str, typer.Option(help="The key (its secret or its id).")],
    model: Annotated[str, typer.Option(help="The model the client asks for.")],
    tags: Annotated[str, typer.Option(help="Comma-separated client tags.")] = "",
    data_class: Annotated[str, typer.Option(help="clean, pii or secret.")] = "clean",
    config: ConfigOpt = None,
) -> None:
    """Which steering rule a request would match, and why, without sending it."""
    from tollway.cli_route import explain

    tag_list = tuple(t.strip() for t in tags.split(",") if t.strip())
    code = explain(console, cli_settings(config), key, model, tag_list, data_class)
    if code:
        raise typer.Exit(code)


@app.command()
def request(request_id: str, config: ConfigOpt = None) -> None:
    """Show one request's ledger record."""
    from tollway.ledger.queries import get_request

    database, _ = open_database(cli_settings(config))
    record = get_request(database.engine, request_id)
    if record is None:
        err.print(f"no request {request_id}")
        raise typer.Exit(1)
    table = Table("field", "value", show_header=False)
    for k, v in record.items():
        table.add_row(k, str(v))
    console.print(table)


app.command()(impact)  # defined with the outcome commands in cli_impact


def savings_table(
    columns: list[str], group_by: list[str], rows: list[dict[str, Any]], granularity: str
) -> Table:
    """Steered share and savings: what the asked-for models would have cost minus the cost."""
    table = Table(*columns, title="Steering savings")
    for label in ("requests", "steered", "steered %", "asked-for $", "actual $", "saved $"):
        table.add_column(label, justify="right")
    for row in rows:
        cells = [fmt_ms(row["bucket_start_ms"])] if granularity != "total" else []
        cells += [str(row[g]) for g in group_by]
        share = row["steered"] / row["requests"] if row["requests"] else 0.0
        saved = row["requested_cost_pusd"] - row["actual_cost_pusd"]
        cells += [
            f"{row['requests']:,}",
            f"{row['steered']:,}",
            f"{share:.1%}",
            f"{row['requested_cost_pusd'] / 10**12:,.6f}",
            f"{row['actual_cost_pusd'] / 10**12:,.6f}",
            f"{saved / 10**12:,.6f}",
        ]
        table.add_row(*cells)
    return table


def _when_option(value: str | None, option: str) -> int | None:
    try:
        return parse_when(value) if value else None
    except ValueError as exc:
        err.print(f"[red]{option}: {exc}[/]")
        raise typer.Exit(2) from None


# Insights: the review list, alerts, outcomes and impact, and the simulated organisation.
app.add_typer(flags_app, name="flags")
app.add_typer(alerts_app, name="alerts")
app.add_typer(outcomes_app, name="outcomes")
app.command("simulate-org")(simulate_org)
app.command()(demo)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
