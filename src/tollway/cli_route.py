"""`tollway route explain`: which steering rule a request would match, and why.

Nothing is sent: the facts come from the key store, the config and the ledger.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from tollway.budgets.model import subject_of
from tollway.budgets.policies import Policies, load_policies
from tollway.budgets.reconcile import used_from_ledger
from tollway.cli_support import open_database
from tollway.errors import ConfigError
from tollway.ledger.keys import KeyInfo, KeyStore, hash_key
from tollway.ledger.policies import PolicyStore
from tollway.metering.peak import MILLI
from tollway.routing.steering import Facts
from tollway.settings import Settings


def find_key(store: KeyStore, key: str) -> KeyInfo | None:
    """A key by its secret (`tw-…`) or by its id."""
    return store.get_by_hash(hash_key(key)) if key.startswith("tw-") else store.get(key)


def budget_fractions(
    engine: Engine, policies: Policies, info: KeyInfo, tags: tuple[str, ...]
) -> tuple[float, float]:
    """The tightest budget's settled use against its soft and hard limits, from the ledger."""
    subjects = {
        (scope, subject_of(scope, info.org, info.team, info.user, info.key_id))
        for scope in ("key", "user", "team", "org")
    } | {("tag", t) for t in tags}
    now = int(time.time() * 1000)
    best = (0.0, 0.0)
    for spec in policies.budgets:
        if (spec.scope, spec.subject) not in subjects:
            continue
        used = used_from_ledger(engine, spec, now)
        soft = used / spec.soft_limit if spec.soft_limit else 0.0
        hard = used / spec.hard_limit if spec.hard_limit else 0.0
        best = max(best, (soft, hard))
    return best


def explain(
    console: Console,
    settings: Settings,
    key: str,
    model: str,
    tags: tuple[str, ...],
    data_class: str,
) -> int:
    """Print every rule with whether it matches; returns a process exit code."""
    database, keys = open_database(settings)
    info = find_key(keys, key)
    if info is None:
        console.print(f"[red]no key {key}[/]")
        return 1
    served = {m.name: m for m in settings.models}
    aliases = {a: m for m in settings.models for a in m.aliases}
    target = served.get(model) or aliases.get(model)
    if target is None:
        console.print(f"[red]no model or alias '{model}'[/]")
        return 1
    try:
        store = PolicyStore(database.engine)
        override = store.get("steering", "rules")
        steering = settings.steering_rules(override["rules"] if override else None)
        policies = load_policies(settings, store)
    except ConfigError as exc:
        console.print(f"[red]{exc.message}[/]")
        return 2
    soft, hard = budget_fractions(database.engine, policies, info, tags)
    schedule = policies.schedule
    now = int(time.time() * 1000)
    facts = Facts(
        org=info.org,
        team=info.team,
        user=info.user,
        key_id=info.key_id,
        requested_model=model,
        tags=tuple(dict.fromkeys((*info.tags, *tags))),
        in_house=target.in_house,
        budget_soft_fraction=soft,
        budget_hard_fraction=hard,
        peak_weight=schedule.time_weight(now) / MILLI,
        utc_hour=int(now // 3_600_000 % 24),
        data_class=data_class,
    )
    console.print(
        f"{info.org}/{info.team}/{info.user} ({info.key_id}) asking for [bold]{model}[/]: "
        f"budget {soft:.0%} of soft, {hard:.0%} of hard (settled, from the ledger); "
        f"peak weight {facts.peak_weight:g}; data class {data_class}"
    )
    table = Table("#", "rule", "when", "then", "matches")
    decided = None
    for i, (rule, hit) in enumerate(steering.explain(facts), start=1):
        actions = {k: v for k, v in vars_of(rule.actions).items() if v is not None}
        mark = "[green]yes[/]" if hit else "no"
        if hit and decided is None:
            decided = rule
            mark = "[bold green]yes, applies[/]"
        table.add_row(str(i), rule.id, rule.reason(), str(actions), mark)
    console.print(table)
    if decided is None:
        console.print(f"no rule matches: served as requested ({model})")
    else:
        console.print(f"rule [bold]{decided.id}[/] applies: {vars_of(decided.actions)}")
    return 0


def vars_of(actions: object) -> dict[str, object]:
    return {name: getattr(actions, name) for name in actions.__slots__}  # type: ignore[attr-defined]
