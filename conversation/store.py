"""Where conversation states live between turns."""

from __future__ import annotations

import threading
from typing import Protocol

from conversation.state import ConvState


class UnknownSession(KeyError):
    """No conversation has this id."""


class SessionStore(Protocol):
    def get(self, session_id: str) -> ConvState | None: ...

    def put(self, state: ConvState) -> None: ...

    def delete(self, session_id: str) -> bool: ...


class InMemorySessionStore:
    """States kept in this process (one user, tests); states are copied in and out."""

    def __init__(self) -> None:
        self._states: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str) -> ConvState | None:
        with self._lock:
            raw = self._states.get(session_id)
        return ConvState.model_validate_json(raw) if raw is not None else None

    def put(self, state: ConvState) -> None:
        raw = state.model_dump_json()
        with self._lock:
            self._states[state.session_id] = raw

    def delete(self, session_id: str) -> bool:
        with self._lock:
            return self._states.pop(session_id, None) is not None
