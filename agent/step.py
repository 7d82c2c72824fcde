"""One traced, schema-validated LLM step: render a versioned prompt, call the model, read its answer.

Every LLM step of the agent (plan, rerank, reply, extract) goes through `llm_step`: the JSON object in
the answer is validated by a pydantic model (or the text is kept as it is), a step-specific check may
reject it (raise ValueError), and a rejected answer is re-asked with the error appended, instructor-style,
at most `retries` times. Anything else that goes wrong becomes a typed `Fallback`, counted in the trace,
and the caller takes its non-LLM path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from agent.llm import ChatModel, ChatReply, LLMError, Message, TokenCallback
from agent.prompts import PromptTemplate
from agent.state import LLMCallTrace

T = TypeVar("T")

NOT_JSON = "output is not the JSON asked for"


@dataclass(frozen=True)
class Fallback:
    """Why a step did not use the model's answer; str() is the form traces and reports count."""

    stage: str
    reason: str

    def __str__(self) -> str:
        return f"{self.stage}: {self.reason}"


@dataclass
class StepResult(Generic[T]):
    """The validated value (None on a fallback), the call's trace, the fallback if any, and the raw text."""

    value: T | None
    trace: LLMCallTrace | None
    fallback: Fallback | None
    text: str = ""
    attempts: int = 0  # model calls made (1 + re-asks)


class _Unreadable(ValueError):
    """The answer holds no JSON object of the asked shape."""


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object between the first "{" and the last "}" of `text`, or None."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def read_output(text: str, output: type[BaseModel] | None) -> Any:
    """`text` itself when `output` is None, else the JSON object in it validated by `output`."""
    if output is None:
        return text
    data = json_object(text)
    if data is None:
        raise _Unreadable("the answer holds no JSON object")
    try:
        return output.model_validate(data)
    except ValidationError as exc:
        raise _Unreadable(str(exc)) from exc


def llm_step(
    model: ChatModel,
    prompt: PromptTemplate,
    *,
    purpose: str,
    variables: dict[str, Any],
    output: type[BaseModel] | None,
    json_schema: dict[str, Any] | None = None,
    max_tokens: int,
    timeout_s: float,
    temperature: float | None = None,
    on_token: TokenCallback | None = None,
    validate: Callable[[T], T] | None = None,
    retries: int = 0,
    invalid: str = NOT_JSON,
) -> StepResult[T]:
    """Render `prompt` with `variables`, call `model`, and return the validated answer or a fallback.

    The schema sent is `json_schema`, else `output`'s own (none for plain text). `temperature` and
    `on_token` are passed only when given, so a step's request (and its cache key) is exactly what its
    caller asks for. `validate` may transform the value or raise ValueError: its message is the
    fallback's reason, `invalid` the reason for an answer that does not parse as `output`.
    """
    messages = prompt.render(**variables)
    schema = json_schema if json_schema is not None or output is None else output.model_json_schema()
    options: dict[str, Any] = {"max_tokens": max_tokens, "timeout_s": timeout_s}
    if schema is not None:
        options["json_schema"] = schema
    if temperature is not None:
        options["temperature"] = temperature
    if on_token is not None:
        options["on_token"] = on_token
    trace = LLMCallTrace(purpose=purpose, model=model.name, prompt_id=prompt.id)
    text, reason = "", invalid
    for attempt in range(1, retries + 2):
        started = time.perf_counter()
        try:
            reply = model.chat(messages, **options)
        except LLMError as exc:
            trace.latency_s += time.perf_counter() - started
            trace.ok, trace.error = False, str(exc)[:200]
            return StepResult(None, trace, Fallback(purpose, type(exc).__name__), text, attempt)
        _count(trace, reply, model)
        text = reply.text
        try:
            value = read_output(text, output)
            if validate is not None:
                value = validate(value)
            return StepResult(value, trace, None, text, attempt)
        except ValueError as exc:  # an unreadable answer, or one the step's own check rejected
            reason = invalid if isinstance(exc, _Unreadable) else str(exc)
            messages = [*messages, Message(role="assistant", content=text),
                        Message(role="user", content=f"That answer was rejected: {exc}\nAnswer again.")]
    return StepResult(None, trace, Fallback(purpose, reason), text, retries + 1)


def _count(trace: LLMCallTrace, reply: ChatReply, model: ChatModel) -> None:
    """Add one answered call to the step's trace (re-asks add up)."""
    trace.model = reply.model or model.name
    trace.prompt_tokens += reply.usage.prompt_tokens
    trace.completion_tokens += reply.usage.completion_tokens
    trace.latency_s += reply.latency_s
