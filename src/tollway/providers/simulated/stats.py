"""Counters the simulator keeps about its traffic, served at `GET /_sim/stats`.

Token totals are what the simulator *generated and billed* (a stream cut short by the
client counts the tokens it sent), so a test can compare the gateway's ledger with them.
"""

from __future__ import annotations

from typing import Any

NO_MODEL = "(none)"


class SimStats:
    """Request, status, token, fault and disconnect counts; cheap to update per request."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}
        self.tokens: dict[tuple[str, str], list[int]] = {}
        self.statuses: dict[int, int] = {}
        self.disconnects = 0
        self.faults_applied = 0

    def reset(self) -> None:
        self.requests.clear()
        self.tokens.clear()
        self.statuses.clear()
        self.disconnects = 0
        self.faults_applied = 0

    def count_request(self, api: str, model: str | None) -> None:
        key = (api, model or NO_MODEL)
        self.requests[key] = self.requests.get(key, 0) + 1

    def count_status(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def count_tokens(self, api: str, model: str, input_tokens: int, output_tokens: int) -> None:
        totals = self.tokens.get((api, model))
        if totals is None:
            totals = self.tokens[(api, model)] = [0, 0]
        totals[0] += input_tokens
        totals[1] += output_tokens

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready counts, nested by API then model."""
        by_api: dict[str, dict[str, int]] = {}
        for (api, model), n in self.requests.items():
            by_api.setdefault(api, {})[model] = n
        tokens: dict[str, dict[str, dict[str, int]]] = {}
        for (api, model), (tin, tout) in self.tokens.items():
            tokens.setdefault(api, {})[model] = {"input": tin, "output": tout}
        return {
            "total_requests": sum(self.requests.values()),
            "requests": by_api,
            "statuses": {str(s): n for s, n in sorted(self.statuses.items())},
            "tokens": tokens,
            "disconnects": self.disconnects,
            "faults_applied": self.faults_applied,
        }
