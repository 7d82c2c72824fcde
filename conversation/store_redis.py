"""Conversation states in Redis, so several server processes serve the same conversations."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import redis
from redis.exceptions import LockNotOwnedError

from agent.state import ConvState
from conversation.store import DEFAULT_LOCK_WAIT_S, SessionBusy

log = logging.getLogger(__name__)


class RedisSessionStore:
    """States as JSON strings with an idle expiry; a Redis lock keeps one session's turns in order across workers.

    The lock expires after `lock_timeout_s` so a worker that dies mid-turn cannot block its session for good;
    it must outlast the slowest turn (the API's turn deadline).
    """

    def __init__(
        self,
        url: str,
        *,
        ttl_s: int = 7 * 24 * 3600,
        prefix: str = "concierge:",
        lock_timeout_s: float = 300.0,
        lock_wait_s: float = DEFAULT_LOCK_WAIT_S,
        client: redis.Redis | None = None,
    ) -> None:
        self.client = client if client is not None else redis.Redis.from_url(url, socket_timeout=10)
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.lock_timeout_s = lock_timeout_s
        self.lock_wait_s = lock_wait_s

    def _key(self, kind: str, session_id: str) -> str:
        return f"{self.prefix}{kind}:{session_id}"

    def get(self, session_id: str) -> ConvState | None:
        raw = self.client.get(self._key("session", session_id))
        return ConvState.model_validate_json(raw) if raw is not None else None

    def put(self, state: ConvState) -> None:
        self.client.set(self._key("session", state.session_id), state.model_dump_json(), ex=self.ttl_s)

    def delete(self, session_id: str) -> bool:
        return self.client.delete(self._key("session", session_id)) > 0

    def lock(self, session_id: str) -> AbstractContextManager[None]:
        return self._hold(session_id)

    @contextmanager
    def _hold(self, session_id: str) -> Iterator[None]:
        lock = self.client.lock(self._key("lock", session_id), timeout=self.lock_timeout_s, sleep=0.02,
                                blocking_timeout=self.lock_wait_s, thread_local=False)
        if not lock.acquire():
            raise SessionBusy(session_id)
        try:
            yield
        finally:
            try:
                lock.release()
            except LockNotOwnedError:
                # The turn outlasted lock_timeout_s; its state is written, but another turn may have run alongside.
                log.warning("session %s…: turn lock expired before the turn ended", session_id[:6])

    def close(self) -> None:
        self.client.close()
