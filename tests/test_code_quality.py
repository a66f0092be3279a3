"""The house rules run with the tests: ruff lint, ruff format, and mypy over the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON_TREES = [d for d in ("src", "tests", "benchmarks") if (ROOT / d).is_dir()]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", *PYTHON_TREES],
        ["ruff", "format", "--check", *PYTHON_TREES],
        ["mypy", "src/tollway"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_code_quality(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
