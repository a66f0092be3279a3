"""The README's first command, as a newcomer runs it: serve with embedded defaults, call, report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import openai

from tests.harness import free_port


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
    env.update(TOLLWAY_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", COLUMNS="200")
    return env


def _serve(port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    """`tollway serve` with no config, as the README's first command runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "tollway", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_banner(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "metrics:" in line:
            return "".join(lines)
    raise AssertionError("no start-up banner:\n" + "".join(lines))


def test_serve_with_embedded_defaults_then_usage(tmp_path: Path) -> None:
    port = free_port()
    env = _env(tmp_path / "data")
    proc = _serve(port, env)
    try:
        banner = _read_banner(proc)
        demo_key = re.search(r"demo key:\s+(\S+)", banner)
        admin_key = re.search(r"admin key:\s+(\S+)", banner)
        assert demo_key and admin_key, banner
        assert (tmp_path / "data" / "admin-key").stat().st_mode & 0o077 == 0

        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key=demo_key.group(1), max_retries=0
        )
        answer = client.chat.completions.create(
            model="gpt-sim", messages=[{"role": "user", "content": "Hello, Tollway!"}]
        )
        assert answer.choices[0].message.content
        assert {m.id for m in client.models.list()} >= {"gpt-sim", "claude-sim", "inhouse-sim"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    report = subprocess.run(
        [sys.executable, "-m", "tollway", "usage", "--by", "team,model", "--since", "7d"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.returncode == 0, report.stderr
    assert re.search(r"platform\s+│\s+gpt-sim\s+│\s+1\s+│", report.stdout), report.stdout

    # a restart shows the same demo key (the file in the data dir, still a valid key)
    proc = _serve(port, env)
    try:
        again = re.search(r"demo key:\s+(\S+)", _read_banner(proc))
        assert again and again.group(1) == demo_key.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
