"""The synthetic organisation: deterministic, realistic, labelled, written to the ledger as
generated, and able to drive a real gateway."""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import astuple
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.harness import ADMIN_KEY, GatewayThread, settings_for
from tollway.cli import app
from tollway.insights.orgsim import (
    GAMER_KINDS,
    SERVICE_TAG,
    MemberTrace,
    OrgSimulator,
    OrgSpec,
    SimModels,
    backfill,
    build_org,
    run_live,
)
from tollway.insights.signals import measure
from tollway.ledger.database import Database
from tollway.ledger.queries import recent_requests, usage
from tollway.ledger.record import LedgerRecord
from tollway.ledger.schema import api_keys, outcomes, requests
from tollway.settings import embedded_defaults, parse_settings

# A Wednesday, 18:00 UTC: the window ends after a full European and Indian working day.
END_MS = int(datetime(2026, 5, 20, 18, 0, tzinfo=ZoneInfo("UTC")).timestamp() * 1000)
MODELS = SimModels.from_settings(parse_settings(embedded_defaults()))
SPEC = OrgSpec(users=90, teams=6, seed=11)  # 7 gamers: each kind once


@pytest.fixture(scope="module")
def traces() -> list[MemberTrace]:
    simulator = OrgSimulator(build_org(SPEC), MODELS, end_ms=END_MS, days=7, pool_size=300)
    return list(simulator.traces())


def _records(traces: list[MemberTrace], kind: str | None = None) -> list[LedgerRecord]:
    return [
        t.record
        for trace in traces
        for a in trace.activities
        if kind is None or a.kind == kind
        for t in a.turns
    ]


def _normal(traces: list[MemberTrace]) -> list[MemberTrace]:
    return [t for t in traces if not t.member.is_gamer]


def _cv(values: list[int]) -> float:
    gaps = [b - a for a, b in pairwise(values)]
    return statistics.pstdev(gaps) / statistics.fmean(gaps)


def test_same_seed_same_traffic_and_labels_other_seed_other() -> None:
    def run(seed: int) -> tuple[list[tuple[object, ...]], dict[str, object], list[str]]:
        truth = build_org(OrgSpec(users=25, teams=3, seed=seed))
        sim = OrgSimulator(truth, MODELS, end_ms=END_MS, days=2, pool_size=200)
        traces = list(sim.traces())
        episodes = [e for t in traces for e in t.episodes]
        records = [astuple(r) for t in traces for r in t.records]
        return records, truth.labels(episodes), [o.outcome_id for t in traces for o in t.outcomes]

    first, again, other = run(5), run(5), run(6)
    assert first == again
    assert len(first[0]) > 1000
    assert len({r[0] for r in first[0]}) == len(first[0])  # request ids are unique
    assert first[0] != other[0] and first[1] != other[1]


@pytest.mark.parametrize(("users", "share"), [(90, 0.08), (200, 0.08), (40, 0.25), (30, 0.0)])
def test_labelled_share_of_gamers_matches_the_spec(users: int, share: float) -> None:
    truth = build_org(OrgSpec(users=users, gamer_share=share))
    gamers = truth.gamers()
    assert len(gamers) == int(users * share + 0.5)
    if len(gamers) >= len(GAMER_KINDS):
        assert {m.gamer_kinds[0] for m in gamers} == set(GAMER_KINDS)
    assert not any(m.service_job for m in gamers)  # batch owners are labelled legitimate
    labels = truth.labels()
    assert sum(u["gamer"] for u in labels["users"]) == len(gamers)
    zones = {t["name"]: t["timezone"] for t in labels["teams"]}
    assert all(ZoneInfo(zone) for zone in zones.values())
    assert set(truth.team_work_hours()) == set(zones)


def test_normal_members_work_in_their_teams_hours(traces: list[MemberTrace]) -> None:
    inside = total = 0
    for trace in _normal(traces):
        hours = trace.member.team.work_hours()
        zone = ZoneInfo(hours.timezone)
        for record in trace.records:
            if record.tags:
                continue  # batch jobs run at night on purpose
            local = datetime.fromtimestamp(record.started_at_ms / 1000, zone)
            total += 1
            inside += local.weekday() < 5 and hours.start_hour <= local.hour < hours.end_hour
    assert total > 20_000
    assert inside / total > 0.9


def test_lunch_dips(traces: list[MemberTrace]) -> None:
    by_hour: Counter[int] = Counter()
    for trace in _normal(traces):
        zone = ZoneInfo(trace.member.team.timezone)
        for record in trace.records:
            if not record.tags:
                by_hour[datetime.fromtimestamp(record.started_at_ms / 1000, zone).hour] += 1
    assert by_hour[12] < 0.8 * statistics.fmean([by_hour[10], by_hour[11], by_hour[14]])


def test_human_cadence_is_bursty_scripts_are_regular(traces: list[MemberTrace]) -> None:
    cvs = []
    for trace in _normal(traces):
        starts = sorted(r.started_at_ms for r in trace.records if not r.tags)
        if len(starts) > 50:
            cvs.append(_cv(starts))
    assert statistics.median(cvs) > 1.5
    bursts = [a for t in traces for a in t.activities if a.kind == "scripted_burst"]
    assert bursts
    for burst in bursts:
        starts = sorted(t.record.started_at_ms for t in burst.turns)
        assert len(starts) > 200 and _cv(starts) < 0.1


def test_agentic_sessions_resend_a_growing_context(traces: list[MemberTrace]) -> None:
    sessions = [a for t in traces for a in t.activities if a.kind == "agentic"]
    assert len(sessions) > 50
    cached = 0
    for session in sessions:
        inputs = [t.record.input_tokens for t in session.turns if t.record.status == 200]
        assert inputs == sorted(inputs) and len(set(inputs)) == len(inputs)
        cached += sum(t.record.cached_input_tokens > 0 for t in session.turns)
        new_parts = {t.text.body for t in session.turns}
        assert len(new_parts) > len(session.turns) // 2  # each turn adds something new
    assert cached > 100


def test_gamers_leave_their_signatures(traces: list[MemberTrace]) -> None:
    padded = _records(traces, "padding")
    padded_turns = [
        t for tr in traces for a in tr.activities if a.kind == "padding" for t in a.turns
    ]
    heavy = [t for t in padded_turns if measure(t.text.body).compression_ratio > 5]
    assert heavy and all(t.record.gaming_score >= 0.5 or t.record.status != 200 for t in heavy)
    assert padded
    normal = [r for r in _records(_normal(traces)) if r.status == 200]
    assert statistics.fmean(r.gaming_score for r in normal) < 0.02

    for loop in (a for t in traces for a in t.activities if a.kind == "duplicate_loop"):
        assert len({t.record.prompt_fingerprint for t in loop.turns}) == 1
        assert len(loop.turns) > 10
    fingerprints = Counter(r.prompt_fingerprint for r in normal)
    repeated = sum(n for n in fingerprints.values() if n > 1)
    assert repeated / len(normal) < 0.01

    near = [a for t in traces for a in t.activities if a.kind == "near_duplicate_loop"]
    assert near
    for loop in near:
        texts = [set(t.text.body.split()) for t in loop.turns]
        assert len({t.record.prompt_fingerprint for t in loop.turns}) > len(loop.turns) // 3
        for words in texts[1:]:  # one prompt, a counter, a timestamp or a word changed
            assert len(words & texts[0]) / len(words | texts[0]) > 0.8

    burned = [r for r in _records(traces, "max_tokens_burner") if r.status == 200]
    assert burned
    assert all(r.finish_reason == "length" and r.output_tokens == r.max_tokens for r in burned)
    assert all(r.max_tokens >= 8192 and r.gaming_score >= 0.5 for r in burned)  # type: ignore[operator]

    for trace in traces:
        if "off_hours_bulk" in trace.member.gamer_kinds:
            zone = ZoneInfo(trace.member.team.timezone)
            bulk = [r for a in trace.activities if a.kind == "off_hours_bulk" for r in a.records]
            assert bulk and not any(r.tags for r in bulk)
            assert all(r.key_id == trace.member.key_id for r in bulk)
            for r in bulk:
                hour = datetime.fromtimestamp(r.started_at_ms / 1000, zone).hour
                assert hour >= 21 or hour < 6
            assert statistics.fmean(r.input_tokens for r in bulk if r.status == 200) > 10_000


def test_no_outcome_gamers_are_busy_and_never_ship(traces: list[MemberTrace]) -> None:
    volume: dict[str, dict[str, int]] = defaultdict(dict)
    for trace in traces:
        tokens = sum(r.input_tokens + r.output_tokens for r in trace.records)
        volume[trace.member.team.name][trace.member.user] = tokens
    busy = [t for t in traces if "no_outcome" in t.member.gamer_kinds]
    assert busy
    for trace in busy:
        team = sorted(volume[trace.member.team.name].values())
        assert volume[trace.member.team.name][trace.member.user] >= team[(3 * len(team)) // 4]
        assert trace.outcomes == []


def test_batch_jobs_run_on_service_keys_and_are_not_gaming(traces: list[MemberTrace]) -> None:
    jobs = [(t, a) for t in traces for a in t.activities if a.kind == "batch_job"]
    assert jobs
    for trace, job in jobs:
        assert not trace.member.is_gamer and not job.gaming
        assert all(
            r.tags == (SERVICE_TAG,) and r.key_id == trace.member.service_key_id
            for r in job.records
        )
    episodes = [e for t in traces for e in t.episodes if e.kind == "batch_job"]
    assert episodes and not any(e.gaming for e in episodes)


def test_outcomes_follow_real_work(traces: list[MemberTrace]) -> None:
    normal = _normal(traces)
    kinds = Counter(o.kind for t in normal for o in t.outcomes)
    assert kinds["pr_merged"] > kinds["ticket_done"] > 0
    ids = {o.outcome_id for t in traces for o in t.outcomes}
    for trace in traces:
        ends = sorted(a.end_ms for a in trace.activities if not a.gaming)
        for outcome in trace.outcomes:
            assert outcome.actors == (trace.member.user,)
            if outcome.kind in ("revert", "incident"):
                assert set(outcome.refs) <= ids
                continue
            before = [e for e in ends if e <= outcome.occurred_at_ms]
            assert before and outcome.occurred_at_ms - before[-1] < 24 * 3_600_000
    per_request = [len(t.outcomes) / max(1, len(t.records)) for t in normal if t.records]
    gamers = [t for t in traces if t.member.is_gamer]
    gamer_rate = sum(len(t.outcomes) for t in gamers) / sum(len(t.records) for t in gamers)
    assert gamer_rate < statistics.fmean(per_request)


def test_backfill_writes_exactly_the_generated_rows_and_is_idempotent(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    database.migrate()
    truth = build_org(OrgSpec(users=30, teams=4, seed=3))
    generated = list(OrgSimulator(truth, MODELS, end_ms=END_MS, days=2, pool_size=200).traces())
    records = [r for t in generated for r in t.records]

    result = backfill(database, truth, MODELS, end_ms=END_MS, days=2, workers=0, pool_size=200)
    assert result.rows == len(records) and result.rows_per_s > 0
    assert result.outcomes == result.outcomes_written == sum(len(t.outcomes) for t in generated)
    keys = {m.key_id for m in truth.members} | {
        m.service_key_id for m in truth.members if m.service_key_id
    }
    assert result.keys_written == len(keys)
    with database.engine.connect() as connection:
        stored = connection.execute(select(requests.c.request_id, requests.c.input_tokens)).all()
        stored_keys = connection.execute(select(api_keys.c.key_id, api_keys.c.org)).all()
        stored_outcomes = connection.execute(select(func.count()).select_from(outcomes)).scalar()
    assert sorted(stored) == sorted((r.request_id, r.input_tokens) for r in records)
    assert {k for k, _ in stored_keys} == keys and {o for _, o in stored_keys} == {"simorg"}
    assert stored_outcomes == result.outcomes

    rollups = usage(database.engine, group_by=["user"], since_ms=0, until_ms=END_MS + 1)
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in records:
        row = sums[r.user]
        row[0] += 1
        row[1] += r.input_tokens
        row[2] += r.output_tokens
        row[3] += r.actual_cost_pusd
    assert {
        u["user"]: [u["requests"], u["input_tokens"], u["output_tokens"], u["actual_cost_pusd"]]
        for u in rollups
    } == sums

    again = backfill(database, truth, MODELS, end_ms=END_MS, days=2, workers=0, pool_size=200)
    assert again.rows == result.rows and again.outcomes_written == 0 and again.keys_written == 0
    with database.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(requests)).scalar() == len(
            records
        )
    rollups_again = usage(database.engine, group_by=["user"], since_ms=0, until_ms=END_MS + 1)
    assert rollups_again == rollups


def test_backfill_in_a_generator_process_writes_the_same_rows(tmp_path: Path) -> None:
    truth = build_org(OrgSpec(users=12, teams=2, seed=4))
    stored = []
    for workers, name in ((0, "here.db"), (1, "worker.db")):
        database = Database(f"sqlite:///{tmp_path / name}")
        database.migrate()
        backfill(database, truth, MODELS, end_ms=END_MS, days=1, workers=workers, pool_size=200)
        with database.engine.connect() as connection:
            stored.append(sorted(connection.execute(select(requests)).all()))
        database.close()
    assert stored[0] == stored[1] and len(stored[0]) > 100


def test_cli_backfills_a_temp_config_and_writes_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TOLLWAY_CONFIG", "TOLLWAY_DATABASE_URL", "TOLLWAY_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    config = tmp_path / "tollway.yaml"
    config.write_text(yaml.safe_dump({**embedded_defaults(), "data_dir": str(tmp_path / "data")}))
    labels = tmp_path / "labels.json"
    args = ["simulate-org", "--config", str(config), "--days", "2", "--users", "30"]
    args += ["--labels", str(labels), "--end", "2026-05-20T18:00:00"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = int(
        next(line for line in result.stdout.splitlines() if "│ rows " in line)
        .split("│")[2]
        .replace(",", "")
    )
    assert "rows/s" in result.stdout and "gamers" in result.stdout
    database = Database(f"sqlite:///{tmp_path / 'data' / 'tollway.db'}")
    with database.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(requests)).scalar() == rows
    written = json.loads(labels.read_text())
    assert len(written["users"]) == 30 and written["episodes"]
    assert {u["team"] for u in written["users"]} == {t["name"] for t in written["teams"]}


def test_live_mode_drives_a_real_gateway(tmp_path: Path) -> None:
    settings = settings_for(embedded_defaults(), tmp_path)
    gateway = GatewayThread(settings).start()
    try:
        truth = build_org(OrgSpec(users=16, teams=2, seed=2))
        # Simulated time: a Wednesday from 09:30 in Berlin, 600x faster than the clock.
        start = int(datetime(2026, 5, 20, 7, 30, tzinfo=ZoneInfo("UTC")).timestamp() * 1000)
        result = run_live(
            gateway.base_url,
            ADMIN_KEY,
            truth,
            MODELS,
            minutes=0.05,
            speed=600,
            sim_start_ms=start,
            post_outcomes=False,
            pool_size=200,
        )
        assert result.sent > 5 and result.ok == result.sent, result.statuses
        deadline = time.monotonic() + 10
        rows: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            rows = recent_requests(gateway.runtime.database.engine, 1000, {"org": "simorg"})
            if len(rows) >= result.sent:
                break
            time.sleep(0.1)
        labels = tmp_path / "live-labels.json"
        cli = CliRunner().invoke(
            app,
            [
                *("simulate-org", "--live", "--url", gateway.base_url, "--admin-key", ADMIN_KEY),
                *("--users", "16", "--teams", "2", "--seed", "2", "--minutes", "0.03"),
                *("--speed", "600", "--start", "2026-05-20T07:30:00", "--no-outcomes"),
                *("--labels", str(labels)),
            ],
        )
        assert cli.exit_code == 0, cli.output
        assert "requests sent" in cli.stdout and "200:" in cli.stdout
        assert json.loads(labels.read_text())["users"]
    finally:
        gateway.stop()
    assert len(rows) == result.sent
    assert {r["user"] for r in rows} == result.users
    assert {r["user"] for r in rows} <= {m.user for m in truth.members}
    assert all(r["team"] == truth.member(str(r["user"])).team.name for r in rows)
