"""Sink configuration: validation messages, secrets from the environment, default names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tollway.alerts import LogSink, SinkConfig, SlackSink, WebhookSink, build_sinks, sink_names
from tollway.errors import ConfigError


def test_http_sinks_need_an_http_url() -> None:
    for kind in ("webhook", "slack"):
        with pytest.raises(ValidationError, match="url is required"):
            SinkConfig(kind=kind)
        with pytest.raises(ValidationError, match="absolute http"):
            SinkConfig(kind=kind, url="ftp://example.test/hook")
        with pytest.raises(ValidationError, match="absolute http"):
            SinkConfig(kind=kind, url="/relative")
    assert SinkConfig(kind="webhook", url="https://example.test/hook").url


def test_unknown_fields_and_misplaced_options_are_errors() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        SinkConfig.model_validate({"kind": "log", "channel": "#alerts"})
    with pytest.raises(ValidationError, match="only to webhook"):
        SinkConfig(kind="slack", url="https://hooks.slack.test/x", secret="s")
    with pytest.raises(ValidationError, match="not both"):
        SinkConfig(kind="webhook", url="http://x.test", secret="s", secret_env="X")
    with pytest.raises(ValidationError, match="max_backoff_s"):
        SinkConfig(kind="log", initial_backoff_s=5, max_backoff_s=1)


def test_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOLLWAY_TEST_HOOK_SECRET", raising=False)
    with pytest.raises(ValidationError, match="TOLLWAY_TEST_HOOK_SECRET"):
        SinkConfig(kind="webhook", url="http://x.test", secret_env="TOLLWAY_TEST_HOOK_SECRET")
    monkeypatch.setenv("TOLLWAY_TEST_HOOK_SECRET", "from-env")
    config = SinkConfig(kind="webhook", url="http://x.test", secret_env="TOLLWAY_TEST_HOOK_SECRET")
    assert config.signing_secret() == "from-env"
    monkeypatch.delenv("TOLLWAY_TEST_HOOK_SECRET")
    with pytest.raises(ConfigError, match="TOLLWAY_TEST_HOOK_SECRET"):
        config.signing_secret()


def test_the_secret_stays_out_of_repr() -> None:
    assert "hunter2" not in repr(SinkConfig(kind="webhook", url="http://x.test", secret="hunter2"))


def test_names_default_to_the_kind_numbered_when_shared() -> None:
    configs = [
        SinkConfig(kind="log"),
        SinkConfig(kind="webhook", url="http://a.test"),
        SinkConfig(kind="webhook", url="http://b.test"),
        SinkConfig(kind="slack", url="http://c.test", name="ops-slack"),
        SinkConfig(kind="slack", url="http://d.test"),
    ]
    assert sink_names(configs) == ["log", "webhook-1", "webhook-2", "ops-slack", "slack"]
    with pytest.raises(ConfigError, match="duplicate sink name"):
        sink_names([SinkConfig(kind="log", name="ops"), SinkConfig(kind="log", name="ops")])
    with pytest.raises(ConfigError, match="duplicate sink name"):  # explicit vs. generated
        sink_names(
            [SinkConfig(kind="log"), SinkConfig(kind="slack", url="http://x.test", name="log")]
        )


def test_build_sinks_makes_one_sink_per_config() -> None:
    sinks = build_sinks(
        [
            SinkConfig(kind="log"),
            SinkConfig(kind="webhook", url="http://a.test", secret="s", max_attempts=2),
            SinkConfig(kind="slack", url="http://c.test"),
        ]
    )
    assert [type(s) for s in sinks] == [LogSink, WebhookSink, SlackSink]
    assert [s.name for s in sinks] == ["log", "webhook", "slack"]
    assert isinstance(sinks[1], WebhookSink) and sinks[1].retry.max_attempts == 2
