"""A synthetic organisation: members who work, game and ship, to test insights honestly.

    truth = build_org(OrgSpec(users=200, teams=8, gamer_share=0.08, seed=7))
    models = SimModels.from_settings(settings)
    sim = OrgSimulator(truth, models, end_ms=now_ms, days=14)   # records, outcomes, episodes
    backfill(database, truth, models, end_ms=now_ms, days=14)   # ...written to the ledger
    run_live(url, admin_key, truth, models, minutes=5, speed=60) # ...or sent to a gateway

`truth.labels(episodes)` says who games how (the `--labels` file of `tollway simulate-org`).
"""

from tollway.insights.orgsim.activity import Activity, Turn
from tollway.insights.orgsim.backfill import BackfillResult, backfill
from tollway.insights.orgsim.generate import MemberTrace, OrgSimulator, run_id
from tollway.insights.orgsim.live import LiveResult, run_live
from tollway.insights.orgsim.models import SimModel, SimModels
from tollway.insights.orgsim.org import build_org
from tollway.insights.orgsim.spec import GAMER_KINDS, PERSONAS, OrgSpec, TeamSpec
from tollway.insights.orgsim.truth import SERVICE_TAG, Episode, Member, OrgTruth

__all__ = [
    "GAMER_KINDS",
    "PERSONAS",
    "SERVICE_TAG",
    "Activity",
    "BackfillResult",
    "Episode",
    "LiveResult",
    "Member",
    "MemberTrace",
    "OrgSimulator",
    "OrgSpec",
    "OrgTruth",
    "SimModel",
    "SimModels",
    "TeamSpec",
    "Turn",
    "backfill",
    "build_org",
    "run_id",
    "run_live",
]
