"""The built-in simulated LLM provider: a real HTTP server speaking the OpenAI and Anthropic APIs.

Deterministic output (Tollway's own tokenizer, so metering can be asserted exactly),
configurable latency, prompt caching, reasoning tokens, and injectable faults::

    with SimulatedServer(SimConfig(ttft_ms=50)) as sim:
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
"""

from tollway.providers.simulated.app import SimulatedProvider, create_app
from tollway.providers.simulated.config import SimConfig
from tollway.providers.simulated.server import SimulatedServer, run_standalone

__all__ = ["SimConfig", "SimulatedProvider", "SimulatedServer", "create_app", "run_standalone"]
