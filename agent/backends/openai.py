"""Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server) through the `openai` SDK.

Retries are ours (tenacity, transient errors only, bounded, jittered); the SDK's own are switched off
so the two never multiply. The API key never appears in a log line or an exception message.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import openai
from pydantic import SecretStr
from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_random_exponential

from agent.backends.tool_calls import loads_lenient, template_tool
from agent.llm import (
    ChatReply,
    LLMConfigError,
    LLMError,
    LLMTimeout,
    LLMUnavailable,
    Message,
    TokenCallback,
    ToolCall,
    ToolSpec,
    Usage,
    ensure_real_calls_allowed,
)

log = logging.getLogger(__name__)

_TRANSIENT = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)


class OpenAIChatModel:
    """ChatModel over the OpenAI chat-completions API (or any server that imitates it)."""

    def __init__(
        self,
        *,
        model: str,
        api_key: SecretStr,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 3,
        default_max_tokens: int = 256,
        retry_wait_s: float = 0.5,
    ) -> None:
        self.name = f"openai:{model}"
        self.model = model
        self.base_url = base_url
        self.default_timeout_s = timeout_s
        self.default_max_tokens = default_max_tokens
        self.max_retries = max_retries
        self.retry_wait_s = retry_wait_s
        self._secret = api_key.get_secret_value()
        # Compatible servers know `max_tokens`; OpenAI's newer models accept only `max_completion_tokens`.
        self._token_param = "max_tokens"
        self._client = openai.OpenAI(api_key=self._secret, base_url=base_url, timeout=timeout_s, max_retries=0)

    def chat(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        tool_choice: str | None = None,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        timeout_s: float | None = None,
        on_token: TokenCallback | None = None,
    ) -> ChatReply:
        """One chat call; see `agent.llm.ChatModel.chat`."""
        ensure_real_calls_allowed("openai")
        started = time.perf_counter()
        timeout = timeout_s or self.default_timeout_s
        deadline = time.monotonic() + timeout
        tools = list(tools or [])
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [_to_openai_message(m) for m in messages],
            self._token_param: max_tokens or self.default_max_tokens,
            "temperature": temperature,
        }
        if tools:
            request["tools"] = [template_tool(t) for t in tools]
            if tool_choice is not None:
                request["tool_choice"] = _to_openai_tool_choice(tool_choice)
        if json_schema is not None:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": json_schema, "strict": False},
            }
        progress = {"emitted": False}
        retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, _TRANSIENT) and not progress["emitted"]),
            stop=stop_after_attempt(self.max_retries + 1) | stop_after_delay(timeout),
            wait=wait_random_exponential(multiplier=self.retry_wait_s, max=8.0),  # "full jitter"
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            reply = retrying(self._attempt, request, tools, deadline, on_token, started, progress)
        except openai.OpenAIError as exc:
            raise self._map_error(exc) from None  # `from None`: the SDK error may quote the request
        reply.latency_s = time.perf_counter() - started
        return reply

    def _attempt(
        self,
        request: dict[str, Any],
        tools: list[ToolSpec],
        deadline: float,
        on_token: TokenCallback | None,
        started: float,
        progress: dict[str, bool],
    ) -> ChatReply:
        remaining = max(0.5, deadline - time.monotonic())
        extra: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}} if on_token else {}
        try:
            response = self._client.chat.completions.create(**request, **extra, timeout=remaining)
        except openai.BadRequestError as exc:
            if "max_completion_tokens" not in str(exc) or "max_tokens" not in request:
                raise
            self._token_param = "max_completion_tokens"  # remembered for later calls
            request["max_completion_tokens"] = request.pop("max_tokens")
            response = self._client.chat.completions.create(**request, **extra, timeout=remaining)
        if on_token is None:
            return self._from_response(response, tools, started)
        return self._from_stream(response, tools, deadline, on_token, started, progress)

    def _from_response(self, response: Any, tools: list[ToolSpec], started: float) -> ChatReply:
        choice = response.choices[0]
        raw_calls = [(c.id, c.function.name, c.function.arguments) for c in (choice.message.tool_calls or [])]
        calls = _parse_calls(raw_calls, tools)
        usage = response.usage
        return ChatReply(
            text=choice.message.content or "",
            tool_calls=calls,
            usage=Usage(
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
            ),
            model=response.model or self.model,
            finish_reason=choice.finish_reason or "stop",
            first_token_s=time.perf_counter() - started,
        )

    def _from_stream(
        self,
        stream: Any,
        tools: list[ToolSpec],
        deadline: float,
        on_token: TokenCallback,
        started: float,
        progress: dict[str, bool],
    ) -> ChatReply:
        text: list[str] = []
        partial: dict[int, list[str]] = {}  # index -> [id, name, arguments-so-far]
        reply = ChatReply(model=self.model)
        with stream:
            for chunk in stream:
                if chunk.usage is not None:
                    reply.usage = Usage(
                        prompt_tokens=chunk.usage.prompt_tokens, completion_tokens=chunk.usage.completion_tokens
                    )
                for choice in chunk.choices[:1]:
                    delta = choice.delta
                    if (delta.content or delta.tool_calls) and reply.first_token_s is None:
                        reply.first_token_s = time.perf_counter() - started
                    if delta.content:
                        progress["emitted"] = True
                        text.append(delta.content)
                        on_token(delta.content)
                    for tc in delta.tool_calls or []:
                        slot = partial.setdefault(tc.index, ["", "", ""])
                        slot[0] = tc.id or slot[0]
                        if tc.function is not None:
                            slot[1] += tc.function.name or ""
                            slot[2] += tc.function.arguments or ""
                    reply.finish_reason = choice.finish_reason or reply.finish_reason
                if time.monotonic() > deadline:
                    raise LLMTimeout(f"{self.name} stream passed its deadline")
        reply.text = "".join(text)
        reply.tool_calls = _parse_calls([tuple(partial[i]) for i in sorted(partial)], tools)
        return reply

    def _map_error(self, exc: openai.OpenAIError) -> LLMError:
        where = f"{self.name} at {self.base_url or 'api.openai.com'}"
        detail = self.scrub(str(getattr(exc, "message", None) or exc))[:400]
        if isinstance(exc, openai.APITimeoutError):
            return LLMTimeout(f"{where} timed out: {detail}")
        if isinstance(exc, openai.APIConnectionError):
            return LLMUnavailable(f"{where} cannot be reached: {detail}")
        status = getattr(exc, "status_code", None)
        if isinstance(exc, openai.RateLimitError):
            return LLMUnavailable(f"{where} is rate limiting (HTTP 429) after retries: {detail}")
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return LLMConfigError(f"{where} rejected the API key (HTTP {status}); check CONCIERGE_OPENAI_API_KEY")
        if isinstance(exc, openai.NotFoundError):
            return LLMConfigError(f"{where}: not found (HTTP 404); check CONCIERGE_OPENAI_MODEL: {detail}")
        if isinstance(status, int) and status >= 500:
            return LLMUnavailable(f"{where} failed with HTTP {status} after retries: {detail}")
        return LLMError(f"{where} refused the request (HTTP {status}): {detail}")

    def scrub(self, text: str) -> str:
        """`text` with the API key masked."""
        return text.replace(self._secret, "****") if self._secret else text

    def _log_retry(self, state: Any) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s: transient %s (attempt %d), retrying",
            self.name,
            type(exc).__name__,
            state.attempt_number,
        )


def _to_openai_message(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        data["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in message.tool_calls
        ]
    elif message.content is None:
        data["content"] = ""
    if message.role == "tool":
        data["tool_call_id"] = message.tool_call_id
    return data


def _to_openai_tool_choice(tool_choice: str) -> str | dict[str, Any]:
    if tool_choice in ("auto", "required", "none"):
        return tool_choice
    return {"type": "function", "function": {"name": tool_choice}}


def _parse_calls(raw: Sequence[tuple[str | None, str | None, str | None]], tools: Sequence[ToolSpec]) -> list[ToolCall]:
    """OpenAI tool calls (arguments as JSON strings) to ours; unknown or unreadable calls are dropped."""
    known = {t.name for t in tools}
    calls = []
    for index, (call_id, name, arguments) in enumerate(raw):
        args = loads_lenient(arguments) if arguments and arguments.strip() else {}
        if not name or (known and name not in known):
            log.warning("dropping call to unknown tool %r", name)
        elif not isinstance(args, dict):
            log.warning("dropping call to %s: arguments are not a JSON object: %.200r", name, arguments)
        else:
            calls.append(ToolCall(id=call_id or f"call_{index}", name=name, arguments=args))
    return calls
