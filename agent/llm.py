"""The one small chat-model interface, its reply types, and the scripted fake every unit test uses."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

# Test safety switch (pydantic-ai style): the test suite sets this to False so that only tests marked
# for the real local model can reach a real backend. Backends call `ensure_real_calls_allowed()`.
ALLOW_REAL_CALLS = True


class LLMError(RuntimeError):
    """A chat model failed; the caller degrades to its non-LLM path."""


class LLMTimeout(LLMError):
    """A chat call ran past its deadline."""


class LLMUnavailable(LLMError):
    """The backend cannot be reached or is not usable (connection refused, missing model)."""


class LLMConfigError(LLMError):
    """The backend is misconfigured; the message says what to fix."""


class RealCallsForbidden(LLMError):
    """A real model was called while real calls are disabled (in tests)."""


def ensure_real_calls_allowed(backend: str) -> None:
    """Raise if real model calls are switched off (the test suite does this by default)."""
    if not ALLOW_REAL_CALLS:
        raise RealCallsForbidden(
            f"real {backend} model call attempted while agent.llm.ALLOW_REAL_CALLS is False; "
            "use ScriptedChatModel or mark the test with @pytest.mark.local_llm"
        )


class ToolCall(BaseModel):
    """A tool call requested by the model."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    """One chat message in OpenAI's shape."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


class ToolSpec(BaseModel):
    """A tool the model may call: name, one-line description, JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ChatReply(BaseModel):
    """What a chat call returns: text, tool calls, token usage and timing."""

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    finish_reason: str = "stop"
    latency_s: float = 0.0
    first_token_s: float | None = None


class ChatRequest(BaseModel):
    """A recorded chat call (what ScriptedChatModel keeps, and what response caches key on)."""

    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    tool_choice: str | None = None
    json_schema: dict[str, Any] | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    timeout_s: float | None = None


TokenCallback = Callable[[str], None]


@runtime_checkable
class ChatModel(Protocol):
    """Any chat model: one call from messages (+ optional tools or JSON schema) to a reply."""

    name: str

    def chat(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        tool_choice: str | None = None,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        timeout_s: float | None = None,
        on_token: TokenCallback | None = None,
    ) -> ChatReply:
        """Run one chat call. `tool_choice` is "auto", "required" or a tool name.

        `json_schema` constrains the text to a JSON document of that schema. `on_token` receives the
        text as it is generated (streaming). Raises LLMError subclasses on failure.
        """
        ...


ScriptedStep = str | ChatReply | BaseException | Callable[[ChatRequest], "ChatReply | str"]


class ScriptExhausted(AssertionError):
    """ScriptedChatModel got a call it had no reply queued for."""


class ScriptedChatModel:
    """A fake chat model that replays queued replies and records every call.

    Each step is a text, a ChatReply, an exception to raise, or a function of the request that
    returns either. An unexpected extra call fails loudly unless `default` is given. `delay_s`
    sleeps before answering (for latency and timeout tests).
    """

    def __init__(
        self,
        steps: Sequence[ScriptedStep] = (),
        *,
        name: str = "scripted",
        default: ScriptedStep | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.name = name
        self.calls: list[ChatRequest] = []
        self._steps: deque[ScriptedStep] = deque(steps)
        self._default = default
        self._delay_s = delay_s
        self._lock = threading.Lock()

    def queue(self, *steps: ScriptedStep) -> None:
        """Append more replies."""
        with self._lock:
            self._steps.extend(steps)

    @property
    def remaining(self) -> int:
        return len(self._steps)

    def chat(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        tool_choice: str | None = None,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        timeout_s: float | None = None,
        on_token: TokenCallback | None = None,
    ) -> ChatReply:
        request = ChatRequest(
            messages=list(messages),
            tools=list(tools or []),
            tool_choice=tool_choice,
            json_schema=json_schema,
            max_tokens=max_tokens,
            temperature=temperature,
            timeout_s=timeout_s,
        )
        with self._lock:
            self.calls.append(request)
            if self._steps:
                step = self._steps.popleft()
            elif self._default is not None:
                step = self._default
            else:
                raise ScriptExhausted(
                    f"ScriptedChatModel {self.name!r} got call #{len(self.calls)} with no reply queued; "
                    f"last message: {messages[-1].content!r}"
                )
        started = time.perf_counter()
        if self._delay_s:
            if timeout_s is not None and self._delay_s > timeout_s:
                time.sleep(timeout_s)
                raise LLMTimeout(f"scripted model exceeded its {timeout_s:.1f}s deadline")
            time.sleep(self._delay_s)
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            step = step(request)
        reply = step if isinstance(step, ChatReply) else ChatReply(text=str(step))
        reply = reply.model_copy(update={"model": reply.model or self.name})
        if on_token is not None and reply.text:
            for chunk in _chunks(reply.text):
                on_token(chunk)
        if not reply.usage.prompt_tokens and not reply.usage.completion_tokens:
            prompt_words = sum(len((m.content or "").split()) for m in messages)
            reply.usage = Usage(prompt_tokens=prompt_words, completion_tokens=len(reply.text.split()))
        reply.latency_s = reply.latency_s or time.perf_counter() - started
        return reply


def _chunks(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]
