"""The small interface each simulated API (OpenAI, Anthropic) implements for the app.

The app does the common work (auth, JSON, model checks, faults, pacing, stats) and asks
the dialect only for what differs: routes, credentials, and error shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tollway.providers.simulated.replies import Reply, StreamReply

Handler = Callable[[dict[str, Any]], Reply | StreamReply]
"""Turns a parsed JSON body (empty for GET) into a reply; may raise `PromptError`."""


class Dialect(Protocol):
    """One wire API: its routes and how it says no."""

    @property
    def name(self) -> str:
        """ "openai" or "anthropic" (as in fault rules and stats)."""
        ...

    @property
    def routes(self) -> Mapping[tuple[str, str], Handler]:
        """(method, path) → handler."""
        ...

    @property
    def model_routes(self) -> frozenset[tuple[str, str]]:
        """The routes whose body must name a model."""
        ...

    def authorized(self, headers: Mapping[bytes, bytes]) -> bool:
        """Whether the request carries this API's credential."""
        ...

    def unauthorized(self) -> Reply: ...

    def malformed_json(self) -> Reply: ...

    def invalid(self, message: str, param: str | None = None) -> Reply:
        """A 400 for a bad field."""
        ...

    def missing(self, field: str) -> Reply:
        """A 400 for a required field that is absent."""
        ...

    def unknown_model(self, model: str) -> Reply: ...

    def get_model(self, model: str) -> Reply:
        """`GET /v1/models/{model}` in this API's shape."""
        ...

    def not_found(self, what: str) -> Reply:
        """A 404 for an unknown path (`what` is "METHOD /path")."""
        ...

    def status_error(self, status: int) -> Reply:
        """A realistic error reply for `status` (used by status faults)."""
        ...

    def stream_error(self, status: int) -> bytes:
        """The in-stream error event for `status` (a status fault after some chunks)."""
        ...
