"""Slack incoming-webhook payloads for alerts: a one-line `text` plus Block Kit `blocks`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

# Slack rejects payloads over these Block Kit limits with a 400, so text is clipped to fit.
_HEADER_MAX = 150
_TEXT_MAX = 3000
_FIELD_MAX = 2000
_FIELDS_MAX = 10


def slack_payload(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook, from the alert's title, severity,
    summary, evidence and optional url."""
    title = _one_line(alert.get("title") or alert.get("kind") or "Tollway alert")
    severity = _one_line(alert.get("severity") or "info").upper()
    summary = str(alert.get("summary") or "")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, _HEADER_MAX)}},
        _section(f"*Severity:* {_escape(severity)}" + (f"\n{_escape(summary)}" if summary else "")),
    ]
    evidence = alert.get("evidence")
    if isinstance(evidence, Mapping) and evidence:
        blocks.append({"type": "section", "fields": _evidence_fields(evidence)})
    url = alert.get("url")
    if isinstance(url, str) and url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": url}
                ],
            }
        )
    if alert.get("id"):
        context = f"Tollway alert `{_escape(str(alert['id']))}`"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    line = f"[{severity}] {title}" + (f": {_one_line(summary)}" if summary else "")
    return {"text": _clip(_escape(line), _TEXT_MAX), "blocks": blocks}


def _evidence_fields(evidence: Mapping[Any, Any]) -> list[dict[str, str]]:
    items = list(evidence.items())
    shown = items if len(items) <= _FIELDS_MAX else items[: _FIELDS_MAX - 1]
    fields = [_field(f"*{_escape(str(key))}*\n{_escape(_value(value))}") for key, value in shown]
    if len(shown) < len(items):
        fields.append(_field(f"_+{len(items) - len(shown)} more in the alert payload_"))
    return fields


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.6g}"
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, _TEXT_MAX)}}


def _field(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _clip(text, _FIELD_MAX)}


def _escape(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters (links, mentions).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
