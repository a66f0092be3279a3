"""The `insights:` section of the config: detection, alerts, impact and the GitHub receiver.

Every field has a default, so `insights:` may be left out entirely.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tollway.alerts.config import SinkConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkHours(_Strict):
    """Working hours in a timezone; activity outside them counts as off-hours."""

    timezone: str = "UTC"
    start_hour: int = Field(8, ge=0, le=23)
    end_hour: int = Field(19, ge=1, le=24)
    weekdays_only: bool = False  # true: weekend days count as off-hours too
    # Hours just before and after work (late sessions, early starts) count as neither:
    # off-hours bulk is about the night.
    shoulder_hours: int = Field(2, ge=0, le=6)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value


class DetectionConfig(_Strict):
    """Per-user gaming detection: what is scored, what is exempt, when a user-day is flagged."""

    flag_score: float = Field(0.5, gt=0, le=1)
    min_requests: int = Field(20, ge=1)  # quieter user-days are not scored
    exempt_tags: list[str] = Field(default_factory=lambda: ["automation", "ci", "service"])
    work_hours: WorkHours = WorkHours()
    team_work_hours: dict[str, WorkHours] = Field(default_factory=dict)
    no_outcome_days: int = Field(7, ge=1)  # look-back for "busy but no outcomes"
    evaluate_every_s: float = Field(300, gt=0)


class SpikeAlertConfig(_Strict):
    """Seasonal spike detection on weighted tokens and cost, per user, team and org."""

    enabled: bool = True
    z_score: float = Field(3.5, gt=0)
    ratio: float = Field(3.0, gt=1)
    k: int = Field(2, ge=1)
    m: int = Field(2, ge=1)
    recover_buckets: int = Field(3, ge=1)
    cooldown_minutes: float = Field(60, ge=0)
    weeks: int = Field(4, ge=1)
    # Smallest excess over the expected value worth an alert, per bucket width.
    min_excess_tokens_5m: float = Field(200_000, gt=0)
    min_excess_usd_5m: float = Field(2.0, gt=0)
    min_excess_tokens_1h: float = Field(1_000_000, gt=0)
    min_excess_usd_1h: float = Field(5.0, gt=0)
    team_incident_users: int = Field(2, ge=2)


class BudgetAlertConfig(_Strict):
    """Alerts as a budget's window fills up, and before it is projected to run out."""

    thresholds_pct: list[float] = Field(default_factory=lambda: [50.0, 80.0, 100.0])
    forecast: bool = True


class AlertsConfig(_Strict):
    """Which alerts run, how often, and where they are delivered."""

    spikes: SpikeAlertConfig = SpikeAlertConfig()
    budgets: BudgetAlertConfig = BudgetAlertConfig()
    sinks: list[SinkConfig] = Field(default_factory=lambda: [SinkConfig(kind="log")])
    evaluate_every_s: float = Field(60, gt=0)


class ImpactConfig(_Strict):
    """How outcomes are attributed to AI usage and compared."""

    attribution_hours: float = Field(24, gt=0)
    quality_window_days: int = Field(7, ge=0)
    min_group_size: int = Field(5, ge=1)
    counted_kinds: list[str] = Field(
        default_factory=lambda: ["pr_merged", "diff_landed", "ticket_done"]
    )


class GitHubConfig(_Strict):
    """The GitHub webhook receiver: its secret, and who is who."""

    secret_env: str = "TOLLWAY_GITHUB_WEBHOOK_SECRET"
    identities: dict[str, str] = Field(default_factory=dict)  # login or email -> gateway user
    repos: dict[str, str] = Field(default_factory=dict)  # owner/repo -> team
    org: str = "demo"


class InsightsConfig(_Strict):
    """Gaming detection, alerts and impact. `jobs: false` leaves the periodic scans and
    alert evaluation to another replica."""

    jobs: bool = True
    detection: DetectionConfig = DetectionConfig()
    alerts: AlertsConfig = AlertsConfig()
    impact: ImpactConfig = ImpactConfig()
    github: GitHubConfig = GitHubConfig()
