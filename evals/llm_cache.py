"""An on-disk LLM response cache: a ChatModel wrapper keyed by model, messages, tools, schema and parameters.

A run made through it can be replayed exactly: the same requests get the same replies without calling the
model, with the latency recorded when the model answered (the replay's own wall time shows what it took). Failures are recorded too (a call that timed out times out again on replay, so the run takes the same
fallback path). Replies are stored in SQLite (WAL; safe for the runner's threads), with the request for
inspection.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent import llm as llm_errors
from agent.llm import ChatModel, ChatReply, LLMError, Message, TokenCallback, ToolSpec

_ERROR = "__error__"  # key of a stored failure: {"__error__": {"type": "LLMTimeout", "message": "..."}}

_SCHEMA = """CREATE TABLE IF NOT EXISTS replies (
  key TEXT PRIMARY KEY, model TEXT NOT NULL, request TEXT NOT NULL, reply TEXT NOT NULL, created REAL NOT NULL)"""


def cache_key(model: str, messages: Sequence[Message], *, tools: Sequence[ToolSpec] | None, tool_choice: str | None,
              json_schema: dict[str, Any] | None, max_tokens: int, temperature: float) -> tuple[str, str]:
    """(sha256 key, canonical request JSON) for one chat call; the deadline is not part of the key."""
    request = {
        "model": model,
        "messages": [m.model_dump(mode="json", exclude_defaults=True) for m in messages],
        "tools": [t.model_dump(mode="json") for t in tools or []],
        "tool_choice": tool_choice,
        "json_schema": json_schema,
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    text = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), text


class ResponseCache:
    """The SQLite file behind one or more CachedChatModels, with hit and miss counters."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> ChatReply | LLMError | None:
        """The stored reply, the stored failure (an LLMError to raise), or None."""
        with self._lock:
            row = self._db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        data = json.loads(row[0])
        if _ERROR in data:
            kind = getattr(llm_errors, data[_ERROR]["type"], LLMError)
            kind = kind if isinstance(kind, type) and issubclass(kind, LLMError) else LLMError
            return kind(data[_ERROR]["message"])
        return ChatReply.model_validate(data)

    def put(self, key: str, model: str, request: str, reply: ChatReply | LLMError) -> None:
        if isinstance(reply, LLMError):
            text = json.dumps({_ERROR: {"type": type(reply).__name__, "message": str(reply)}})
        else:
            text = reply.model_dump_json()
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?)",
                             (key, model, request, text, time.time()))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        """Hits, misses and stored replies, for the run record."""
        return {"path": str(self.path), "hits": self.hits, "misses": self.misses, "stored": len(self)}

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedChatModel:
    """A ChatModel that answers from the cache when it can and stores what the inner model says."""

    def __init__(self, inner: ChatModel, cache: ResponseCache) -> None:
        self.inner = inner
        self.cache = cache
        self.name = inner.name

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
        """The stored reply for this exact request, else the inner model's (stored on success)."""
        key, request = cache_key(self.name, messages, tools=tools, tool_choice=tool_choice, json_schema=json_schema,
                                 max_tokens=max_tokens, temperature=temperature)
        stored = self.cache.get(key)
        if isinstance(stored, LLMError):
            raise stored
        if stored is not None:  # as recorded, latency included: a replay reports what the model took then
            if on_token is not None and stored.text:
                on_token(stored.text)
            return stored
        try:
            reply = self.inner.chat(messages, tools=tools, tool_choice=tool_choice, json_schema=json_schema,
                                    max_tokens=max_tokens, temperature=temperature, timeout_s=timeout_s,
                                    on_token=on_token)
        except LLMError as exc:
            if not isinstance(exc, llm_errors.LLMConfigError):  # a misconfiguration is no outcome to replay
                self.cache.put(key, self.name, request, exc)
            raise
        self.cache.put(key, self.name, request, reply)
        return reply
