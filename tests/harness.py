"""Real servers on loopback ports for tests: the gateway in a thread or a subprocess."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from tollway.app import TollwayApp
from tollway.server import uvicorn_config
from tollway.settings import Settings, parse_settings

ADMIN_KEY = "tw-admin-test-key"


def bound_socket() -> socket.socket:
    """A listening-ready TCP socket on a free loopback port (no port race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with bound_socket() as sock:
        return int(sock.getsockname()[1])


class GatewayThread:
    """The full gateway app under uvicorn, in a background thread with its own loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = TollwayApp(settings)
        self._sock = bound_socket()
        self.port = int(self._sock.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn_config(self.app, "127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._run, name="gateway", daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._server.serve(sockets=[self._sock]))

    def start(self) -> GatewayThread:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        return self

    @property
    def runtime(self) -> Any:
        return self.app.runtime

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def settings_for(config: dict[str, Any], data_dir: Path) -> Settings:
    return parse_settings({**config, "data_dir": str(data_dir)})


class GatewayProcess:
    """`tollway serve` (or another serving `command`, e.g. `demo`) as a real subprocess."""

    def __init__(
        self,
        config_path: Path | None,
        data_dir: Path,
        port: int,
        extra_env: dict[str, str] | None = None,
        command: Sequence[str] = ("serve",),
    ) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "TOLLWAY_DATA_DIR": str(data_dir),
            "TOLLWAY_ADMIN_KEY": ADMIN_KEY,
            **(extra_env or {}),
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tollway",
                *command,
                *(["--config", str(config_path)] if config_path is not None else []),
                "--port",
                str(port),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30) -> GatewayProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise RuntimeError(f"gateway exited early: {out}")
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError("gateway did not become ready")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def terminate(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def vendor_and_in_house(sim: Any) -> dict[str, Any]:
    """Providers and models for steering tests: `gpt-test` from a third-party vendor and
    `inhouse` (upstream `inhouse-coder`) on an in-house provider, both on the simulator."""
    return {
        "providers": [
            {"name": "vendor", "kind": "simulated", "base_url": sim.base_url},
            {"name": "gpu", "kind": "simulated", "base_url": sim.base_url, "in_house": True},
        ],
        "models": [
            {"name": "gpt-test", "price_as": "gpt-5.4", "deployments": [{"provider": "vendor"}]},
            {
                "name": "inhouse",
                "in_house": True,
                "price": {"input": "0.05", "output": "0.20"},
                "deployments": [{"provider": "gpu", "model": "inhouse-coder"}],
            },
        ],
    }
