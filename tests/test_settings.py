"""Configuration is validated once, at start, and every error names its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollway.errors import ConfigError
from tollway.metering.catalog import PriceCatalog
from tollway.providers import build_provider
from tollway.routing.table import RouteTable
from tollway.settings import embedded_defaults, load_settings, parse_settings


def test_embedded_defaults_are_valid() -> None:
    settings = load_settings(None)
    assert settings.demo and {m.name for m in settings.models} >= {"gpt-sim", "inhouse-sim"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([1, 2], "top level must be a mapping"),
        ({"providers": [{"name": "p", "kind": "openai"}]}, "providers[0]: Value error, base_url"),
        ({"providers": [{"name": "p", "kind": "grpc"}]}, "providers[0].kind"),
        (
            {"providers": [{"name": "p", "kind": "simulated"}, {"name": "p", "kind": "simulated"}]},
            "'p' is declared twice",
        ),
        (
            {"models": [{"name": "m", "deployments": [{"provider": "ghost"}]}]},
            "models[0].deployments[0].provider: unknown provider 'ghost'",
        ),
        ({"server": {"port": 70000}}, "server.port"),
        ({"server": {"max_body_bytes": 0}}, "server.max_body_bytes"),
        ({"sever": {}}, "sever: Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_name_the_field(raw: object, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    assert expected in info.value.message


def test_yaml_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("providers: [unclosed")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_settings(broken)


def test_unknown_price_reference_and_missing_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = embedded_defaults()
    raw["models"][0]["price_as"] = "gpt-99-ultra"
    settings = parse_settings(raw)
    providers = {
        p.name: build_provider(p, simulated_base_url="http://x") for p in settings.providers
    }
    with pytest.raises(ConfigError, match=r"models\[0\]\.price_as: 'gpt-99-ultra'"):
        RouteTable.build(settings.models, providers, PriceCatalog.load_default())

    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    provider = parse_settings(
        {
            "providers": [
                {
                    "name": "oa",
                    "kind": "openai",
                    "base_url": "http://x",
                    "api_key_env": "NO_SUCH_KEY_VAR",
                }
            ]
        }
    ).providers[0]
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_VAR is not set"):
        build_provider(provider)


def test_bad_discount_names_the_provider() -> None:
    provider = parse_settings(
        {"providers": [{"name": "oa", "kind": "simulated", "discount": "150%"}]}
    ).providers[0]
    with pytest.raises(ConfigError, match=r"providers\[oa\]\.discount"):
        build_provider(provider, simulated_base_url="http://x")
