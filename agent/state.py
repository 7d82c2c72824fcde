"""The one explicit, typed conversation state, and the structured result of a turn (`Attr` lives in retrieval)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from retrieval.catalog import Attr

__all__ = ["Action", "Attr", "ChatTurn", "ConvState", "LLMCallTrace", "Recommendation", "ToolCallTrace", "Trace",
           "TurnResult"]


class ChatTurn(BaseModel):
    role: Literal["user", "assistant"]
    text: str


class ConvState(BaseModel):
    """Everything a conversation knows: accepted/rejected attributes and items, shown ids, turn count."""

    session_id: str
    user_id: str | None = None
    turn: int = 0
    accepted: list[Attr] = Field(default_factory=list)
    rejected: list[Attr] = Field(default_factory=list)
    asked: list[Attr] = Field(default_factory=list)
    rejected_items: list[str] = Field(default_factory=list)
    liked_items: list[str] = Field(default_factory=list)  # named as liked: the session's history for the ranker
    disliked_items: list[str] = Field(default_factory=list)  # named as disliked
    seen_items: list[str] = Field(default_factory=list)  # named as seen; never recommended back
    shown_items: list[str] = Field(default_factory=list)
    mentioned_items: list[str] = Field(default_factory=list)  # named by the other side of an observed dialog
    last_shown: list[str] = Field(default_factory=list)
    wishes: list[str] = Field(default_factory=list)
    candidate_ids: list[str] = Field(default_factory=list)
    last_action: Literal["none", "ask", "recommend"] = "none"
    last_asked: Attr | None = None
    history: list[ChatTurn] = Field(default_factory=list)

    @property
    def questions_asked(self) -> int:
        return len(self.asked)

    @property
    def named_items(self) -> list[str]:
        """Items the person named (liked, disliked or seen): never recommended back."""
        return list(dict.fromkeys([*self.liked_items, *self.disliked_items, *self.seen_items]))


class Recommendation(BaseModel):
    item_id: str
    title: str
    reason: str  # the reasons as one line ("; "-joined), for plain-text clients
    reasons: list[str] = Field(default_factory=list)  # the same reasons one by one: what UIs render
    score: float = 0.0


class Action(BaseModel):
    """What the agent did this turn: ask about one attribute, or recommend catalog items."""

    kind: Literal["ask", "recommend"]
    attribute: Attr | None = None
    options: list[str] = Field(default_factory=list)
    items: list[Recommendation] = Field(default_factory=list)


class LLMCallTrace(BaseModel):
    purpose: str
    model: str
    prompt_id: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    ok: bool = True
    error: str | None = None


class ToolCallTrace(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    observation: str = ""
    latency_s: float = 0.0


class Trace(BaseModel):
    """How the turn was produced: understood input, tools and LLM calls, fallbacks, timing."""

    understood: dict[str, Any] = Field(default_factory=dict)
    tool_calls: list[ToolCallTrace] = Field(default_factory=list)
    llm_calls: list[LLMCallTrace] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)
    degraded: bool = False
    candidates: int = 0
    invalid_ids_proposed: int = 0  # ids an LLM named that the candidate gate removed
    latency_s: float = 0.0

    def timed_s(self) -> float:
        """The turn's time as measured; for a turn replayed from the LLM response cache (its calls answer at
        once) the model time recorded when the calls were made, so a replay's timing matches the run's."""
        return max(self.latency_s, sum(c.latency_s for c in self.llm_calls))


class TurnResult(BaseModel):
    """What one turn returns to the UI, the API and the simulators."""

    session_id: str
    turn: int
    action: Action
    text: str  # the lead, then the recommended items as a plain-text list
    trace: Trace
    lead: str = ""  # the lead sentence alone: what UIs show above the items
