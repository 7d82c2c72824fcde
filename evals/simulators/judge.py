"""The LLM judge: rates a finished conversation 1-5 for relevance, naturalness and explanation faithfulness."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from agent.llm import ChatModel, LLMError, Message
from agent.prompts import load_prompt
from evals.sim_cases import SimCase

DEFAULT_PROMPT = "judge.v1"
DIMENSIONS = ("relevance", "naturalness", "faithfulness")
MAX_TURNS_SHOWN = 12
MAX_TURN_CHARS = 240
MAX_ITEMS_SHOWN = 10
MAX_ATTRIBUTES_SHOWN = 8


class Ratings(BaseModel):
    relevance: int = Field(ge=1, le=5)
    naturalness: int = Field(ge=1, le=5)
    faithfulness: int = Field(ge=1, le=5)


class Verdict(BaseModel):
    """The judge's ratings (None when it could not produce valid ones) and what the judging cost."""

    ratings: dict[str, int] | None = None
    tokens: int = 0
    latency_s: float = 0.0
    calls: int = 0
    error: str | None = None


def judge_schema() -> dict[str, Any]:
    """JSON schema: three integers 1-5 (an enum, so small models cannot drift)."""
    score = {"type": "integer", "enum": [1, 2, 3, 4, 5]}
    return {"type": "object", "properties": {d: score for d in DIMENSIONS}, "required": list(DIMENSIONS),
            "additionalProperties": False}


def describe_need(case: SimCase) -> str:
    """The hidden need in words, without target titles (the judge rates fit, not guessing)."""
    need = case.need
    parts = []
    if need.must_have:
        parts.append("must be " + ", ".join(a.value for a in need.must_have))
    if need.must_not:
        parts.append("must not be " + ", ".join(a.value for a in need.must_not))
    if need.soft:
        parts.append(f'said: "{need.soft[:200]}"')
    return "; ".join(parts) or "something good"


class LLMJudge:
    """Rates transcripts with a versioned judge prompt; invalid JSON is re-asked once, then given up (counted)."""

    def __init__(self, model: ChatModel, *, prompt_id: str = DEFAULT_PROMPT, timeout_s: float = 90.0) -> None:
        self.model = model
        self.prompt = load_prompt(prompt_id)
        self.prompt_id = self.prompt.id
        self.model_name = model.name
        self.timeout_s = timeout_s

    def rate(self, case: SimCase, transcript: Sequence[dict], items: Sequence[dict]) -> Verdict:
        """Ratings for one session; `items` are {title, attributes} of the items shown."""
        turns = [{"role": t["role"], "text": str(t["text"])[:MAX_TURN_CHARS]} for t in transcript][-MAX_TURNS_SHOWN:]
        shown = [{"title": i["title"], "attributes": list(i["attributes"])[:MAX_ATTRIBUTES_SHOWN]}
                 for i in list(items)[:MAX_ITEMS_SHOWN]]
        messages = self.prompt.render(need=describe_need(case), transcript=turns, items=shown)
        verdict = Verdict()
        for _attempt in range(2):
            started = time.perf_counter()
            try:
                reply = self.model.chat(messages, json_schema=judge_schema(), max_tokens=40, temperature=0.0,
                                        timeout_s=self.timeout_s)
            except LLMError as exc:
                verdict.error = f"{type(exc).__name__}: {str(exc)[:120]}"
                verdict.latency_s += time.perf_counter() - started
                return verdict
            verdict.calls += 1
            verdict.tokens += reply.usage.total_tokens
            verdict.latency_s += reply.latency_s or time.perf_counter() - started
            try:
                verdict.ratings = Ratings.model_validate(json.loads(reply.text)).model_dump()
                verdict.error = None
                return verdict
            except (ValueError, ValidationError) as exc:
                verdict.error = f"invalid ratings: {str(exc)[:160]}"
                messages = [*messages, Message(role="assistant", content=reply.text),
                            Message(role="user", content=f"Invalid: {str(exc)[:160]}. Answer with the JSON only.")]
        return verdict
