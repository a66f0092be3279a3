"""Run the simulator under uvicorn: in a background thread, in the caller's loop, or standalone."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType

import uvicorn

from tollway.providers.simulated.app import SimulatedProvider, create_app
from tollway.providers.simulated.config import SimConfig

_LOOP = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
_HTTP = "httptools" if importlib.util.find_spec("httptools") else "h11"


def uvicorn_config(
    app: SimulatedProvider, host: str, port: int, log_level: str | None = None, **kw: object
) -> uvicorn.Config:
    """The uvicorn settings the simulator runs with (fast loop and parser, no access log).

    Without `log_level` uvicorn leaves the process's logging configuration alone, which
    matters when the simulator is embedded next to the gateway.
    """
    if log_level is None:
        kw["log_config"] = None
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=_LOOP,
        http=_HTTP,
        ws="none",
        lifespan="on",
        log_level=log_level,
        access_log=False,
        server_header=False,
        **kw,  # type: ignore[arg-type]
    )


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves the host process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class SimulatedServer:
    """The simulator on a loopback port, as a (sync or async) context manager.

    `with SimulatedServer(SimConfig()) as sim:` runs it in a background thread;
    `async with` (or `await start_async()`) runs it as a task in the running loop.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        graceful_shutdown_s: float = 1.0,
    ) -> None:
        self.config = config or SimConfig()
        self.app = create_app(self.config)
        self.host = host
        self.port = port
        self._graceful_shutdown_s = graceful_shutdown_s
        self._server: _EmbeddedServer | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT` (the Anthropic SDK's `base_url`)."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """`http://HOST:PORT/v1` (the OpenAI SDK's `base_url`)."""
        return self.base_url + "/v1"

    def _bind(self) -> tuple[_EmbeddedServer, socket.socket]:
        if self._server is not None:
            raise RuntimeError("the simulated server is already running")
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn_config(
            self.app, self.host, self.port, timeout_graceful_shutdown=self._graceful_shutdown_s
        )
        self._server = _EmbeddedServer(config)
        return self._server, sock

    def start(self) -> SimulatedServer:
        """Start serving in a background thread; returns once the port accepts requests."""
        server, sock = self._bind()
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="tollway-sim", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server = None
                raise RuntimeError("the simulated server failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop the background server and wait for its thread."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._server, self._thread = None, None

    async def start_async(self) -> SimulatedServer:
        """Start serving as a task in the running event loop; returns once started."""
        server, sock = self._bind()
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                self._server = None
                await self._task  # re-raises the start-up error
                raise RuntimeError("the simulated server failed to start")
            await asyncio.sleep(0.005)
        return self

    async def stop_async(self) -> None:
        """Stop the in-loop server and wait for it to finish."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server, self._task = None, None

    def __enter__(self) -> SimulatedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> SimulatedServer:
        return await self.start_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_async()


def run_standalone(
    host: str = "127.0.0.1", port: int = 9000, config: SimConfig | None = None
) -> None:
    """Serve the simulator until interrupted (the `simulate-provider` command)."""
    app = create_app(config or SimConfig())
    uvicorn.Server(uvicorn_config(app, host, port, log_level="info")).run()
