"""Admin API for the review list and alert history: scan, list, review, feedback, errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.admin.test_api import call
from tests.harness import GatewayThread
from tests.ledger.conftest import make_record
from tollway.insights.flag_scan import DAY_MS
from tollway.ledger.alerts import AlertDraft, AlertStore
from tollway.ledger.rows import RowWriter


def test_scan_list_and_review_flags(gateway: GatewayThread, user_key: str) -> None:
    now = int(time.time() * 1000)
    day = now - now % DAY_MS - 2 * DAY_MS
    loop = [
        make_record(
            user="loopy",
            team="research",
            org="acme",
            started_at_ms=day + 3_600_000 + i * 3_000,
            prompt_fingerprint="same",
        )
        for i in range(300)
    ]
    engine = gateway.runtime.database.engine
    with engine.begin() as connection:
        RowWriter(engine.dialect).write(connection, loop)
    since = datetime.fromtimestamp(day / 1000, UTC).date().isoformat()

    status, body = call(gateway, "POST", f"/admin/v1/flags/scan?since={since}")
    assert status == 200 and body["new_flags"] >= 1
    status, body = call(gateway, "GET", f"/admin/v1/flags?since={since}&team=research")
    assert status == 200
    (flag,) = [f for f in body["flags"] if f["user"] == "loopy"]
    assert flag["status"] == "open" and "duplicate_share" in flag["signals"]
    assert len(flag["sample_request_ids"]) == 3

    path = f"/admin/v1/flags/{flag['flag_id']}/review"
    status, reviewed = call(gateway, "POST", path, {"status": "dismissed", "note": "load test"})
    assert status == 200 and reviewed["status"] == "dismissed"
    assert reviewed["review_note"] == "load test"

    status, body = call(gateway, "POST", path, {"status": "guilty"})
    assert status == 400 and body["error"]["param"] == "status"
    status, body = call(
        gateway, "POST", "/admin/v1/flags/acme/nobody/2020-01-01/review", {"status": "confirmed"}
    )
    assert status == 404
    status, body = call(gateway, "GET", "/admin/v1/flags?since=yesterdayish")
    assert status == 400 and body["error"]["param"] == "since"
    status, body = call(gateway, "GET", "/admin/v1/flags", key=user_key)
    assert status == 403


def test_alert_history_and_feedback(gateway: GatewayThread, user_key: str) -> None:
    store = AlertStore(gateway.runtime.database.engine)
    draft = AlertDraft(
        "spike:user:acme/payments/ada:5m",
        "spike",
        "user",
        "acme/payments/ada",
        "acme",
        "payments",
        "warning",
        "ada: 6.2x the usual weighted tokens",
        {"actual": 62, "expected": 10},
    )
    opened = store.open(draft, int(time.time() * 1000))
    assert opened is not None
    status, body = call(gateway, "GET", "/admin/v1/alerts?since=1h&state=open")
    assert status == 200
    assert opened["alert_id"] in [a["alert_id"] for a in body["alerts"]]
    path = f"/admin/v1/alerts/{opened['alert_id']}"
    status, body = call(gateway, "POST", path + "/feedback", {"verdict": "useful"})
    assert status == 200 and body["feedback"] == "useful"
    status, body = call(gateway, "GET", path)
    assert status == 200 and body["evidence"] == {"actual": 62, "expected": 10}
    status, body = call(gateway, "POST", path + "/feedback", {"verdict": "meh"})
    assert status == 400
    status, body = call(gateway, "GET", "/admin/v1/alerts/alt_nope")
    assert status == 404 and "alt_nope" in body["error"]["message"]
    status, _ = call(gateway, "GET", "/admin/v1/alerts", key=user_key)
    assert status == 403
