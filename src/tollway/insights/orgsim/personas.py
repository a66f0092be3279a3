"""How members work: how often a persona codes with completions, runs agents, chats.

Rates are per working day for a member of activity level 1.0; a member's level (drawn
log-normal around 1) scales them, so some people simply use AI more than others.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Persona:
    """Expected activities per working day (Poisson means) for one way of working."""

    name: str
    ide_blocks: float  # stretches of coding with in-editor completions
    agent_sessions: float  # agentic sessions resending a growing context
    chats: float  # Q&A conversations on vendor models


PERSONA_TABLE: dict[str, Persona] = {
    "ide": Persona("ide", ide_blocks=3.0, agent_sessions=0.5, chats=2.0),
    "agentic": Persona("agentic", ide_blocks=1.0, agent_sessions=3.5, chats=1.5),
    "chat": Persona("chat", ide_blocks=0.3, agent_sessions=0.3, chats=6.0),
    "mixed": Persona("mixed", ide_blocks=1.5, agent_sessions=1.5, chats=3.0),
}
# Share of members of each persona.
PERSONA_WEIGHTS: dict[str, float] = {"ide": 0.35, "agentic": 0.25, "chat": 0.2, "mixed": 0.2}

# Batch jobs on service keys: a regular cadence, often at night; legitimate automation.
SERVICE_JOBS: tuple[str, ...] = ("nightly", "hourly", "quarter_hourly")
