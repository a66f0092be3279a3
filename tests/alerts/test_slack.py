"""Slack payload building: one-line text, escaping, and Block Kit limits."""

from __future__ import annotations

from tollway.alerts import slack_payload


def test_text_is_one_line_and_escaped() -> None:
    payload = slack_payload(
        {"title": "Budget <acme>\nexhausted", "severity": "critical", "summary": "a & b\nc"}
    )
    assert payload["text"] == "[CRITICAL] Budget &lt;acme&gt; exhausted: a &amp; b c"
    assert payload["blocks"][0]["text"]["text"] == "Budget <acme> exhausted"  # plain_text


def test_minimal_alert_still_makes_a_valid_payload() -> None:
    payload = slack_payload({})
    assert payload["text"] == "[INFO] Tollway alert"
    assert [b["type"] for b in payload["blocks"]] == ["header", "section"]


def test_evidence_beyond_ten_fields_is_summarised() -> None:
    evidence = {f"k{i}": i for i in range(15)} | {"nested": {"a": [1, 2]}}
    fields = slack_payload({"evidence": evidence})["blocks"][2]["fields"]
    assert len(fields) == 10  # Slack's limit per section
    assert fields[-1]["text"] == "_+7 more in the alert payload_"


def test_long_texts_are_clipped_to_slack_limits() -> None:
    payload = slack_payload({"title": "t" * 500, "summary": "s" * 5000})
    assert len(payload["blocks"][0]["text"]["text"]) == 150
    assert len(payload["blocks"][1]["text"]["text"]) <= 3000
    assert len(payload["text"]) <= 3000
