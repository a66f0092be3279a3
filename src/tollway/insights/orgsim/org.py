"""Building an organisation from its spec: teams, members, personas, gamers, batch jobs."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from tollway.insights.orgsim.personas import PERSONA_WEIGHTS, SERVICE_JOBS
from tollway.insights.orgsim.spec import TEAM_NAMES, TIMEZONES, OrgSpec, TeamSpec
from tollway.insights.orgsim.truth import Member, OrgTruth


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FIRST = _words(
    "ada alan anya arjun bea carl chen dana dev eli emma farah gio hana ivan jade jon kai "
    "lara leo lin maya milo nia noor olga omar pia raj rosa sam sara tara theo uma vera "
    "wei yara yuki zane amir bo cleo dmitri elif femi grace hugo ines jun kofi luis mei "
    "nils"
)
_LAST = _words(
    "abe berg cruz diaz eng fox garcia haas ito jain kim lund moss nagy ortiz park quinn "
    "reyes sato tan uhl voss wu xu yang zhou adler brown costa dubois evans ferro gupta "
    "hill iyer jones khan lopez meyer novak okafor patel rossi silva torres vance weber"
)
# Gaming habits that combine with any other as a second one.
_SECOND_KINDS = ("padding", "max_tokens_burner", "duplicate_loop")


@dataclass(slots=True)
class _Draft:
    index: int
    user: str
    team: TeamSpec
    persona: str
    level: float
    gamer_kinds: tuple[str, ...] = ()
    service_job: str | None = None

    def member(self) -> Member:
        return Member(
            self.index,
            self.user,
            self.team,
            self.persona,
            self.level,
            self.gamer_kinds,
            self.service_job,
        )


def build_org(spec: OrgSpec) -> OrgTruth:
    """The organisation `spec` describes; the same spec always builds the same one."""
    rng = random.Random(f"orgsim:org:{spec.seed}")
    teams = spec.team_specs or _draw_teams(spec.teams, rng)
    personas = list(PERSONA_WEIGHTS)
    weights = list(PERSONA_WEIGHTS.values())
    draft = [
        _Draft(
            i,
            user,
            teams[i % len(teams)],
            rng.choices(personas, weights)[0],
            math.exp(rng.gauss(0.0, 0.45)),
        )
        for i, user in enumerate(_user_names(spec.users, rng))
    ]
    every = max(1, spec.service_key_every)
    service_owners = set(range(every // 2, spec.users, every))
    for i in sorted(service_owners):
        draft[i].service_job = SERVICE_JOBS[rng.randrange(len(SERVICE_JOBS))]
    _assign_gamers(spec, draft, service_owners, rng)
    return OrgTruth(spec, tuple(teams), tuple(d.member() for d in draft))


def _draw_teams(count: int, rng: random.Random) -> tuple[TeamSpec, ...]:
    teams = []
    for i in range(count):
        name = TEAM_NAMES[i % len(TEAM_NAMES)]
        if i >= len(TEAM_NAMES):
            name = f"{name}-{i // len(TEAM_NAMES) + 1}"
        start = rng.choice((8, 9, 9, 9, 10))
        teams.append(TeamSpec(name, TIMEZONES[i % len(TIMEZONES)], start, start + 9))
    return tuple(teams)


def _user_names(count: int, rng: random.Random) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for _ in range(count):
        base = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}"
        n = seen.get(base, 0) + 1
        seen[base] = n
        names.append(base if n == 1 else f"{base}{n}")
    return names


def _assign_gamers(
    spec: OrgSpec, draft: list[_Draft], service_owners: set[int], rng: random.Random
) -> None:
    """Pick gamers from the teams in turn (so heavy habits rarely share a small team), give
    each a kind (every kind once before any repeats) and sometimes a second habit."""
    by_team: dict[str, list[_Draft]] = {}
    for d in draft:
        if d.index not in service_owners:
            by_team.setdefault(d.team.name, []).append(d)
    for candidates in by_team.values():
        rng.shuffle(candidates)
    order = list(by_team)
    rng.shuffle(order)
    chosen: list[_Draft] = []
    want = min(spec.gamer_count, sum(len(v) for v in by_team.values()))
    while len(chosen) < want:
        for team in order:
            if by_team[team] and len(chosen) < want:
                chosen.append(by_team[team].pop())
    kinds: list[str] = []
    for d in chosen:
        if not kinds:
            kinds = list(spec.gamer_kinds)
            rng.shuffle(kinds)
        first = kinds.pop()
        habits = [first]
        extra = [k for k in _SECOND_KINDS if k != first and k in spec.gamer_kinds]
        if first != "no_outcome" and extra and rng.random() < spec.second_kind_share:
            habits.append(rng.choice(extra))
        d.gamer_kinds = tuple(habits)
    for d in chosen:
        if "no_outcome" in d.gamer_kinds:
            # Busy agentic work above any teammate's level: a top-quartile token volume.
            d.persona = "agentic"
            d.level = 1.3 * max(o.level for o in draft if o.team is d.team and o is not d)
