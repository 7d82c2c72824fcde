"""Where conversation states live between turns: in memory, in SQLite (default for the API), or in Redis."""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from agent.state import ConvState

DEFAULT_LOCK_WAIT_S = 120.0


class UnknownSession(KeyError):
    """No conversation has this id."""


class SessionBusy(RuntimeError):
    """Another turn of this session is still running (its lock was not free in time)."""


class SessionStore(Protocol):
    def get(self, session_id: str) -> ConvState | None: ...

    def put(self, state: ConvState) -> None: ...

    def delete(self, session_id: str) -> bool: ...

    def lock(self, session_id: str) -> AbstractContextManager[None]:
        """Hold while a turn reads, changes and writes back one session; raises SessionBusy on timeout."""
        ...


class KeyedLocks:
    """One lock per session id in this process; a lock is forgotten once nobody holds or waits for it."""

    def __init__(self, *, wait_s: float = DEFAULT_LOCK_WAIT_S) -> None:
        self.wait_s = wait_s
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, session_id: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.get(session_id)
            if lock is None:
                lock = self._locks[session_id] = threading.Lock()
        if not lock.acquire(timeout=self.wait_s):
            raise SessionBusy(session_id)
        try:
            yield
        finally:
            lock.release()


class InMemorySessionStore:
    """States kept in this process (one user, tests); states are copied in and out."""

    def __init__(self, *, lock_wait_s: float = DEFAULT_LOCK_WAIT_S) -> None:
        self._states: dict[str, str] = {}
        self._lock = threading.Lock()
        self._turns = KeyedLocks(wait_s=lock_wait_s)

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

    def lock(self, session_id: str) -> AbstractContextManager[None]:
        return self._turns.hold(session_id)


class SqliteSessionStore:
    """States as JSON rows in one SQLite file (WAL): a restarted server continues every conversation.

    One process at a time: the turn locks are per process, so several workers need the Redis store.
    With `ttl_s`, sessions idle for longer are deleted (on opening, then at most hourly on a write).
    """

    def __init__(self, path: str | Path, *, ttl_s: int | None = None, lock_wait_s: float = DEFAULT_LOCK_WAIT_S) -> None:
        self.path = Path(path)
        self.ttl_s = ttl_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the request threads, serialised by a lock: a read or write is ~0.1 ms.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses no commit
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at REAL NOT NULL)"
        )
        self._lock = threading.Lock()
        self._turns = KeyedLocks(wait_s=lock_wait_s)
        self._purged_at = 0.0
        self._purge()

    def _purge(self) -> None:
        now = time.time()
        if self.ttl_s is not None and now - self._purged_at > 3600:
            self._purged_at = now
            with self._lock:
                self._db.execute("DELETE FROM sessions WHERE updated_at < ?", (now - self.ttl_s,))

    def get(self, session_id: str) -> ConvState | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return ConvState.model_validate_json(row[0]) if row is not None else None

    def put(self, state: ConvState) -> None:
        raw = state.model_dump_json()
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions (id, state, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                (state.session_id, raw, time.time()),
            )
        self._purge()

    def delete(self, session_id: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0

    def lock(self, session_id: str) -> AbstractContextManager[None]:
        return self._turns.hold(session_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()
