"""Simulated users for `concierge eval sim`: what they see, what they say back, and the interface they share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from agent.state import Attr


class ShownItem(BaseModel):
    """An item card as the UI shows it: id, title and the agent's reason."""

    item_id: str
    title: str
    reason: str = ""


class Reflection(BaseModel):
    """A reflective instruction the user wrote after agent turn `turn` when its satisfaction dropped.

    kind "avoid": stop showing/asking `attribute`; "want": focus on `attribute`; "different": show something new.
    """

    turn: int
    kind: Literal["avoid", "want", "different"]
    attribute: Attr | None = None
    text: str = ""


class SimReply(BaseModel):
    """What the simulated user says after one agent turn (or to open), and the bookkeeping behind it."""

    text: str
    accepted_id: str | None = None
    leave: bool = False
    reflection: Reflection | None = None
    satisfaction: float = 1.0
    tokens: int = 0
    latency_s: float = 0.0
    llm_calls: int = 0
    leaks: int = 0
    redactions: int = 0
    fallbacks: list[str] = Field(default_factory=list)


class Simulator(Protocol):
    """A simulated user: it opens the conversation, then reacts to each agent turn (text + item cards)."""

    model_name: str
    prompt_id: str

    def opening(self) -> SimReply:
        """The first message, before any agent turn."""
        ...

    def react(self, agent_text: str, shown: Sequence[ShownItem]) -> SimReply:
        """The reply to one agent turn."""
        ...
