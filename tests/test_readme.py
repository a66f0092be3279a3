"""The README's examples stay true: its config snippets load, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tollway.cli import app
from tollway.settings import parse_settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
YAML_BLOCKS = re.findall(r"```yaml\n(.*?)```", README, re.S)
COMMANDS = sorted(set(re.findall(r"^tollway ([a-z-]+(?: [a-z]+)?)", README, re.M)))


def test_readme_opens_with_the_two_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first_block is not None
    lines = [line for line in first_block.group(1).splitlines() if line.strip()]
    assert lines[0].startswith("pip install -e . && tollway serve")
    assert "python3 -m pytest" in lines[1]
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert lines[1].split("#")[0].strip() in ci


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=[f"yaml{i}" for i in range(len(YAML_BLOCKS))])
def test_config_examples_are_valid(block: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each snippet is valid on top of the full configuration example (the first one)."""
    monkeypatch.setenv("TOLLWAY_HOOK_SECRET", "documented-in-the-readme")
    config = yaml.safe_load(YAML_BLOCKS[0])
    snippet = yaml.safe_load(block)
    models = {m["name"]: m for m in config.get("models", [])}
    models.update({m["name"]: m for m in snippet.pop("models", [])})
    parse_settings({**config, **snippet, "models": list(models.values())})


@pytest.mark.parametrize("command", COMMANDS)
def test_documented_commands_exist(command: str) -> None:
    result = CliRunner().invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
