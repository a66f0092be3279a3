"""The gateway's runtime state: built once in the ASGI lifespan and passed explicitly."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp

from tollway.budgets.engine import BudgetEngine
from tollway.gateway.auth import KeyCache
from tollway.governance.recorder import PromptRecorder
from tollway.ledger.writer import LedgerWriter
from tollway.metrics import Metrics
from tollway.routing.steering import Steering
from tollway.routing.table import RouteTable


@dataclass(slots=True)
class GatewayState:
    """What the hot path reads: immutable tables plus the few live services it calls."""

    routes: RouteTable
    keys: KeyCache
    ledger: LedgerWriter
    metrics: Metrics
    session: aiohttp.ClientSession
    max_body_bytes: int
    budgets: BudgetEngine
    steering: Steering = field(default_factory=lambda: Steering(()))
    default_max_output_tokens: int = 4096
    prompts: PromptRecorder | None = None
    reserved_tags: frozenset[str] = frozenset()  # only keys may carry these tags
    background: set[asyncio.Task[None]] = field(default_factory=set)

    def in_background(self, task: asyncio.Task[None]) -> None:
        """Keep a reference to a fire-and-forget task until it finishes."""
        self.background.add(task)
        task.add_done_callback(self.background.discard)
