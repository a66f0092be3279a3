"""Assembles the ASGI application: gateway endpoints, admin API, metrics, health.

All state is built in the ASGI lifespan (`startup`) and lives on the app
object; nothing is kept in module globals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from tollway.alerts import build_sinks
from tollway.bootstrap import ensure_admin_key, ensure_demo_key
from tollway.budgets.service import BudgetService
from tollway.errors import MethodNotAllowed, NotFound, TollwayError
from tollway.gateway import responses
from tollway.gateway.apis import BY_PATH
from tollway.gateway.auth import KeyCache
from tollway.gateway.handler import ApiEndpoint
from tollway.gateway.models import ModelsEndpoint
from tollway.gateway.state import GatewayState
from tollway.governance.recorder import PromptRecorder
from tollway.insights.in_house import daily_tracker
from tollway.insights.jobs import InsightJobs
from tollway.ledger.database import Database
from tollway.ledger.keys import KeyStore
from tollway.ledger.policies import PolicyStore
from tollway.ledger.prompt_logs import PromptLogStore
from tollway.ledger.writer import LedgerWriter
from tollway.metering.catalog import PriceCatalog
from tollway.metrics import Metrics
from tollway.providers import build_provider
from tollway.routing.table import RouteTable
from tollway.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any, Any], Any]


class InternalError(TollwayError):
    status = 500


def _dialect(scope: dict[str, Any]) -> str:
    """Which API's error shape the caller expects: Anthropic SDKs send `anthropic-version`."""
    return "anthropic" if any(k == b"anthropic-version" for k, _ in scope["headers"]) else "openai"


@dataclass(slots=True)
class Runtime:
    """Everything the running app owns; the admin API and the CLI's `serve` read it."""

    settings: Settings
    database: Database
    key_store: KeyStore
    catalog: PriceCatalog
    gateway: GatewayState
    budgets: BudgetService
    policies: PolicyStore
    prompt_logs: PromptLogStore
    admin_key: str
    demo_key: str | None
    insights: InsightJobs | None = None


class TollwayApp:
    """The ASGI application. `announce` receives start-up lines meant for the operator."""

    def __init__(self, settings: Settings, *, announce: Callable[[str], None] | None = None):
        self.settings = settings
        self.announce = announce or (lambda line: log.info("%s", line))
        self.runtime: Runtime | None = None
        self._routes: dict[tuple[str, str], Handler] = {}
        self._admin: Handler | None = None
        self._simulator: Any = None
        self.ready = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._dispatch(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _dispatch(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path: str = scope["path"]
        handler = self._routes.get((scope["method"], path))
        if handler is None:
            if path.startswith("/admin/") and self._admin is not None:
                handler = self._admin
            else:
                await self._not_routed(scope, send)
                return
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await handler(scope, receive, tracking_send)
        except Exception:
            # A bug, not an expected failure: log it, and still answer in the API's shape.
            log.exception("unhandled error on %s %s", scope["method"], path)
            if not started:
                await responses.send_error(
                    send, InternalError("Internal gateway error."), _dialect(scope), ""
                )

    async def _not_routed(self, scope: dict[str, Any], send: Any) -> None:
        path = scope["path"]
        dialect = _dialect(scope)
        exc: TollwayError
        if any(p == path for _, p in self._routes):
            allowed = sorted(m for m, p in self._routes if p == path)
            exc = MethodNotAllowed(f"Method {scope['method']} is not allowed on {path}.")
            exc.headers["allow"] = ", ".join(allowed)
        else:
            exc = NotFound(f"No such endpoint: {scope['method']} {path}.")
        await responses.send_error(send, exc, dialect, "")

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        """Open the ledger, start the simulator if configured, build the route table."""
        settings = self.settings
        database = Database(settings.resolved_database_url, sync=settings.server.ledger_sync)
        # Requests are classified in-house as they are written (`user_daily`), replayed
        # ones included, so impact reports read one small rollup.
        daily = daily_tracker(settings)
        await asyncio.to_thread(database.migrate, daily)
        key_store = KeyStore(database.engine)
        admin_key = ensure_admin_key(settings.resolved_data_dir)
        demo_key = await asyncio.to_thread(ensure_demo_key, settings, key_store)

        simulated_url = None
        if any(p.kind == "simulated" and not p.base_url for p in settings.providers):
            from tollway.providers.simulated import SimConfig, SimulatedServer

            sim = settings.simulated
            self._simulator = SimulatedServer(
                SimConfig(
                    ttft_ms=sim.ttft_ms,
                    tokens_per_s=sim.tokens_per_s,
                    default_output_tokens=sim.default_output_tokens,
                    require_api_key=False,
                )
            )
            await self._simulator.start_async()
            simulated_url = self._simulator.base_url

        catalog = PriceCatalog.load_default().merged(settings.prices)
        providers = {
            p.name: build_provider(p, simulated_base_url=simulated_url) for p in settings.providers
        }
        routes = RouteTable.build(settings.models, providers, catalog)
        keys = KeyCache(key_store, admin_key=admin_key)
        await keys.start()
        policies = PolicyStore(database.engine)
        budgets = BudgetService(settings, policies, database.engine)
        await budgets.start()
        ledger = LedgerWriter(database.engine, daily=daily)
        await ledger.start()
        prompt_logs = PromptLogStore(database.engine)
        prompts = PromptRecorder(prompt_logs, settings.prompt_logging)
        await prompts.start()
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ttl_dns_cache=300),
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
        )
        state = GatewayState(
            routes,
            keys,
            ledger,
            Metrics(),
            session,
            settings.server.max_body_bytes,
            budgets.engine,
            settings.steering_rules(budgets.steering_override),
            settings.budget_defaults.default_max_output_tokens,
            prompts,
            frozenset(settings.insights.detection.exempt_tags),
        )
        budgets.on_steering = lambda rules: setattr(
            state, "steering", settings.steering_rules(rules)
        )
        self.runtime = Runtime(
            settings,
            database,
            key_store,
            catalog,
            state,
            budgets,
            policies,
            prompt_logs,
            admin_key,
            demo_key,
        )
        self._routes = {("POST", api.path): ApiEndpoint(state, api) for api in BY_PATH.values()}
        self._routes[("GET", "/v1/models")] = ModelsEndpoint(routes)
        self._routes[("GET", "/metrics")] = self._metrics
        self._routes[("GET", "/healthz")] = self._health
        if settings.insights.jobs:
            sinks = build_sinks(settings.insights.alerts.sinks)
            self.runtime.insights = InsightJobs(
                database.engine, settings.insights, budgets.engine, sinks
            )
            await self.runtime.insights.start()
        from tollway.admin.api import create_admin_app

        self._admin = create_admin_app(self.runtime)
        self.ready.set()

    async def shutdown(self) -> None:
        """Flush the ledger and close connections; nothing queued is lost."""
        runtime = self.runtime
        if runtime is not None:
            if runtime.insights is not None:
                await runtime.insights.close()
            await runtime.gateway.keys.close()
            await runtime.gateway.session.close()
            if runtime.gateway.background:
                await asyncio.wait(runtime.gateway.background, timeout=5)
            await runtime.budgets.close()
            if runtime.gateway.prompts is not None:
                await runtime.gateway.prompts.close()
            await runtime.gateway.ledger.close()
            runtime.database.engine.dispose()
        if self._simulator is not None:
            await self._simulator.stop_async()

    async def _metrics(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert self.runtime is not None
        body = self.runtime.gateway.metrics.render()
        await responses.send_bytes(send, 200, body, "text/plain; version=0.0.4", "")

    async def _health(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await responses.send_json(send, 200, {"status": "ok"})
