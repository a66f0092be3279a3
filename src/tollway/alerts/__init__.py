"""Alert delivery: sinks (log, signed webhook, Slack) fed by a non-blocking dispatcher."""

from tollway.alerts.config import SinkConfig, sink_names
from tollway.alerts.delivery import AlertDispatcher, DeliveryResult, DeliveryStats, build_sinks
from tollway.alerts.retry import RetryPolicy
from tollway.alerts.signing import sign, verify_signature
from tollway.alerts.sinks import (
    AlertSink,
    DeliveryError,
    LogSink,
    SharedSession,
    SlackSink,
    WebhookSink,
)
from tollway.alerts.slack import slack_payload

__all__ = [
    "AlertDispatcher",
    "AlertSink",
    "DeliveryError",
    "DeliveryResult",
    "DeliveryStats",
    "LogSink",
    "RetryPolicy",
    "SharedSession",
    "SinkConfig",
    "SlackSink",
    "WebhookSink",
    "build_sinks",
    "sign",
    "sink_names",
    "slack_payload",
    "verify_signature",
]
