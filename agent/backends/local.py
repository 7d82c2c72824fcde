"""The embedded chat model: a GGUF file run in-process by llama-cpp-python.

Prompts are rendered with the model's own chat template (GGUF `tokenizer.chat_template`, which for
Qwen2.5 lists the tools in the system turn). Generation is our own short token loop over
`Llama.generate`, so we can stream, enforce a deadline between tokens, count tokens exactly and parse
Qwen's `<tool_call>{...}</tool_call>` blocks (llama-cpp's chat handler ignores tool calls unless a
tool is forced). A forced tool choice pre-fills `<tool_call>` and constrains the rest with a JSON
grammar, so a call is always produced.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.backends.model_files import check_gguf_file
from agent.backends.tool_calls import (
    TOOL_OPEN,
    call_schema,
    forced_tools,
    inline_refs,
    parse_tool_calls,
    template_message,
    template_tool,
)
from agent.llm import (
    ChatReply,
    LLMConfigError,
    LLMError,
    LLMTimeout,
    Message,
    TokenCallback,
    ToolSpec,
    Usage,
    ensure_real_calls_allowed,
)

log = logging.getLogger(__name__)

_STOP_STRINGS = ("<|im_end|>", "<|endoftext|>")
_PREFILL_CHUNK = 128  # prompt tokens evaluated between two deadline checks
# Used only when a GGUF carries no chat template: plain ChatML, which most instruct models accept.
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class LocalChatModel:
    """ChatModel over an in-process llama.cpp model; one model load, calls serialised by a lock."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_threads: int,
        n_ctx: int,
        default_timeout_s: float,
        default_max_tokens: int,
        verbose: bool = False,
    ) -> None:
        self.model_path = Path(model_path)
        self.name = f"local:{self.model_path.stem}"
        self.default_timeout_s = default_timeout_s
        self.default_max_tokens = default_max_tokens
        self._lock = threading.Lock()  # a Llama object is not thread-safe
        self._grammars: dict[str, Any] = {}
        started = time.perf_counter()
        self._llama = load_llama(self.model_path, n_threads=n_threads, n_ctx=n_ctx, verbose=verbose)
        self.load_s = time.perf_counter() - started
        self.n_ctx = self._llama.n_ctx()
        self._formatter = self._make_formatter()
        self._eog = {self._llama.token_eos()} | {
            ids[0] for s in _STOP_STRINGS if len(ids := self._llama.tokenize(s.encode(), add_bos=False, special=True)) == 1
        }

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
        """One chat call; see `agent.llm.ChatModel.chat`. A forced tool choice wins over `json_schema`."""
        ensure_real_calls_allowed("local")
        started = time.perf_counter()
        deadline = time.monotonic() + (timeout_s or self.default_timeout_s)
        tools = [] if tool_choice == "none" else list(tools or [])
        forced = forced_tools(tools, tool_choice)
        prompt = self.render(messages, tools)
        schema = call_schema(forced) if forced else json_schema
        if forced:
            prompt += TOOL_OPEN + "\n"
        with self._lock:
            grammar = self._grammar(schema) if schema else None
            tokens = self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
            if len(tokens) + 8 > self.n_ctx:
                raise LLMError(f"prompt of {len(tokens)} tokens does not fit the {self.n_ctx}-token context")
            budget = min(max_tokens or self.default_max_tokens, self.n_ctx - len(tokens))
            gate = _StreamGate(on_token, tool_mode=bool(tools)) if on_token is not None and not forced else None
            gen = self._generate(
                tokens,
                max_tokens=budget,
                temperature=temperature,
                grammar=grammar,
                deadline=deadline,
                gate=gate,
                started=started,
            )
        if forced:
            text, calls = "", parse_tool_calls(TOOL_OPEN + "\n" + gen.text, forced)[1]
        elif tools:
            text, calls = parse_tool_calls(gen.text, tools)
        else:
            text, calls = gen.text, []
        if not calls:
            text = gen.text  # unstripped, so the streamed chunks join to exactly the reply text
        if gate is not None:
            gate.finish(text if not calls else "")
        return ChatReply(
            text=text,
            tool_calls=calls,
            usage=Usage(prompt_tokens=len(tokens), completion_tokens=gen.n_tokens),
            model=self.name,
            finish_reason="tool_calls" if calls else gen.finish_reason,
            latency_s=time.perf_counter() - started,
            first_token_s=gen.first_token_s,
        )

    def render(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> str:
        """The prompt text for these messages and tools, from the model's own chat template."""
        rendered = self._formatter(
            messages=[template_message(m) for m in messages],
            tools=[template_tool(t) for t in tools] or None,
        )
        return rendered.prompt

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _generate(
        self,
        tokens: list[int],
        *,
        max_tokens: int,
        temperature: float,
        grammar: Any,
        deadline: float,
        gate: _StreamGate | None,
        started: float,
    ) -> _Generated:
        llama = self._llama
        self._prefill(tokens, deadline)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        out = _Generated()
        stream = llama.generate(tokens, temp=temperature, repeat_penalty=1.0, grammar=grammar)
        try:
            for token in stream:
                if out.first_token_s is None:
                    out.first_token_s = time.perf_counter() - started
                if token in self._eog:
                    out.finish_reason = "stop"
                    break
                out.n_tokens += 1
                out.text += decoder.decode(llama.detokenize([token]))
                cut = min((i for s in _STOP_STRINGS if (i := out.text.find(s)) >= 0), default=-1)
                if cut >= 0:
                    out.text, out.finish_reason = out.text[:cut], "stop"
                    break
                if gate is not None:
                    gate.feed(out.text)
                if out.n_tokens >= max_tokens:
                    break
                if time.monotonic() > deadline:
                    raise LLMTimeout(f"local model passed its deadline after {out.n_tokens} tokens")
        except LLMError:
            raise
        except (RuntimeError, ValueError) as exc:
            raise LLMError(f"llama.cpp generation failed: {exc}") from exc
        finally:
            stream.close()
        out.text += decoder.decode(b"", final=True)
        return out

    def _prefill(self, tokens: list[int], deadline: float) -> None:
        """Evaluate the uncached part of the prompt in chunks, checking the deadline between them.

        Reuses the longest common prefix with what the Llama object already holds (llama.cpp's KV
        cache), which is why prompts keep a stable prefix. An interrupted prefill still warms the cache.
        """
        llama = self._llama
        cached = llama.input_ids[: llama.n_tokens].tolist()
        prefix = 0
        for a, b in zip(cached, tokens):
            if a != b:
                break
            prefix += 1
        if prefix >= len(tokens) - 1:
            return  # `generate` replays at most one token itself
        llama.n_tokens = prefix
        for start in range(prefix, len(tokens), _PREFILL_CHUNK):
            if time.monotonic() > deadline:
                raise LLMTimeout(f"local model passed its deadline reading the prompt ({start}/{len(tokens)} tokens)")
            try:
                llama.eval(tokens[start : start + _PREFILL_CHUNK])
            except RuntimeError as exc:
                raise LLMError(f"llama.cpp prompt evaluation failed: {exc}") from exc

    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            try:
                self._grammars[key] = LlamaGrammar.from_json_schema(json.dumps(inline_refs(schema)), verbose=False)
            except (ValueError, KeyError, TypeError) as exc:
                raise LLMError(f"cannot turn this JSON schema into a grammar: {exc}") from exc
        return self._grammars[key]

    def _make_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llama = self._llama
        template = llama.metadata.get("tokenizer.chat_template") or _CHATML
        eos, bos = llama.token_eos(), llama.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
        )


def load_llama(model_path: Path, *, n_threads: int, n_ctx: int, verbose: bool = False) -> Any:
    """Load a GGUF with llama.cpp; LLMConfigError for a missing or unloadable file."""
    check_gguf_file(model_path)
    try:
        import llama_cpp
    except ImportError as exc:
        raise LLMConfigError(
            "llama-cpp-python is not installed; run `pip install -e .` (it builds llama.cpp, ~6 min)"
        ) from exc
    options = {"n_ctx": n_ctx, "n_threads": n_threads, "n_threads_batch": n_threads, "verbose": verbose}
    try:
        with _LOAD_LOCK, _no_amx_repack(llama_cpp):
            return llama_cpp.Llama(model_path=str(model_path), **options)
    except ValueError as exc:
        raise LLMConfigError(f"llama.cpp could not load {model_path}: {exc}; is it a complete GGUF model?") from exc


_LOAD_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_amx_repack(llama_cpp: Any) -> Iterator[None]:
    """On a llama.cpp built with AMX, load weights without the extra (AMX/repack) buffer types.

    A native build on a CPU that advertises AMX repacks Q4_K weights for AMX and then crashes with
    SIGSEGV at `ldtilecfg` in the first matmul (seen in our CI VM with llama-cpp-python 0.3.36).
    Llama() does not expose `use_extra_bufts`, so the default model params are adjusted while loading.
    """
    if b"AMX_INT8 = 1" not in llama_cpp.llama_print_system_info():
        yield
        return
    module = llama_cpp.llama.llama_cpp
    original = module.llama_model_default_params

    def params() -> Any:
        value = original()
        value.use_extra_bufts = False
        return value

    log.info("llama.cpp was built with AMX; loading without extra buffer types (AMX repack crashes here)")
    module.llama_model_default_params = params
    try:
        yield
    finally:
        module.llama_model_default_params = original


@dataclass
class _Generated:
    text: str = ""
    n_tokens: int = 0
    finish_reason: str = "length"
    first_token_s: float | None = None


class _StreamGate:
    """Streams text as it grows, holding back what may turn out to be a stop string or a tool call.

    With tools offered, a reply that starts like a bare JSON call (`{` or a code fence) is held until
    the end, and `<tool_call>` ends the stream: tool-call markup never reaches the user.
    """

    def __init__(self, on_token: TokenCallback, *, tool_mode: bool) -> None:
        self._on_token = on_token
        self._tool_mode = tool_mode
        self._markers = _STOP_STRINGS + ((TOOL_OPEN,) if tool_mode else ())
        self._sent = 0
        self._closed = False

    def feed(self, text: str) -> None:
        if self._closed or (self._tool_mode and text.lstrip()[:1] in ("{", "`")):
            return
        hits = [i for m in self._markers if (i := text.find(m, max(0, self._sent - len(m)))) >= 0]
        if hits:
            self._emit(text, min(hits))
            self._closed = True
            return
        partial = max((k for m in self._markers for k in range(1, len(m)) if text.endswith(m[:k])), default=0)
        self._emit(text, len(text) - partial)

    def finish(self, text: str) -> None:
        """Flush the rest of the final reply text ("" when the reply turned out to be tool calls)."""
        if not self._closed:
            self._emit(text, len(text))
        self._closed = True

    def _emit(self, text: str, end: int) -> None:
        if end > self._sent:
            self._on_token(text[self._sent : end])
            self._sent = end
