"""One ledger row: everything known about one request, and nothing it does not need."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class LedgerRecord:
    """The metered outcome of one gateway request.

    Costs are integers in pico-USD (1e-12 USD) so sums are exact; a price of
    $0.0028 per 1M tokens is 2,800 pico-USD per token. `weighted_charge_pusd`
    is what budgets are charged (raw actual cost times `peak_weight`); cost
    reports always use the raw costs.
    """

    request_id: str
    started_at_ms: int
    finished_at_ms: int
    key_id: str
    user: str
    team: str
    org: str
    api: str  # "openai.chat" | "openai.completions" | "openai.embeddings" | "anthropic.messages"
    requested_model: str
    served_model: str = ""
    provider: str = ""
    deployment: str = ""
    tags: tuple[str, ...] = ()
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    list_cost_pusd: int = 0
    actual_cost_pusd: int = 0
    peak_weight: float = 1.0
    weighted_charge_pusd: int = 0
    status: int = 200
    error_class: str | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    stream: bool = False
    estimated: bool = False
    max_tokens: int | None = None
    finish_reason: str | None = None
    attempts: int = 1
    route_rule: str | None = None
    route_reason: str | None = None
    prompt_fingerprint: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    steered: bool = False  # a steering rule sent it to another model than asked
    requested_cost_pusd: int = 0  # actual cost had the asked-for model served it
    gaming_score: float = 0.0  # 0 = ordinary work .. 1 = tokens burned for their own sake
    prompt_sketch: int = 0  # near-duplicate sketch of the new prompt text; 0 = none
