"""The gateway's runtime state: built once in the ASGI lifespan and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from tollway.gateway.auth import KeyCache
from tollway.ledger.writer import LedgerWriter
from tollway.metrics import Metrics
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
