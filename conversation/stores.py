"""Which session store a setting names: memory, SQLite or Redis (the one module that knows them all, so the
stores never import each other)."""

from __future__ import annotations

from pathlib import Path

from conversation.store import DEFAULT_LOCK_WAIT_S, InMemorySessionStore, SessionStore, SqliteSessionStore


def open_store(spec: str, *, data_dir: Path, ttl_s: int, lock_wait_s: float = DEFAULT_LOCK_WAIT_S) -> SessionStore:
    """A store from a setting: "memory", "sqlite" (<data_dir>/sessions.sqlite3), "sqlite:///path", "redis://...".

    Sessions idle for longer than `ttl_s` are forgotten (Redis expires them; SQLite deletes them).
    """
    if spec == "memory":
        return InMemorySessionStore(lock_wait_s=lock_wait_s)
    if spec == "sqlite":
        return SqliteSessionStore(data_dir / "sessions.sqlite3", ttl_s=ttl_s, lock_wait_s=lock_wait_s)
    if spec.startswith("sqlite:///"):
        return SqliteSessionStore(spec.removeprefix("sqlite:///"), ttl_s=ttl_s, lock_wait_s=lock_wait_s)
    if spec.startswith(("redis://", "rediss://", "unix://")):
        from conversation.store_redis import RedisSessionStore  # redis is imported only when used

        # The lock's expiry must outlast the slowest turn, which the wait (the API's deadline) bounds.
        return RedisSessionStore(spec, ttl_s=ttl_s, lock_wait_s=lock_wait_s, lock_timeout_s=max(300.0, 2 * lock_wait_s))
    raise ValueError(
        f"session_store must be 'memory', 'sqlite', 'sqlite:///<path>' or 'redis://host:port/db', not {spec!r}"
    )


def is_shared(spec: str) -> bool:
    """True if several server processes can share this store (and its turn locks)."""
    return spec.startswith(("redis://", "rediss://", "unix://"))
