"""Session stores: the same contract in memory, in SQLite and in a real Redis; turns stay in order across stores."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from agent.state import Attr, ChatTurn, ConvState
from conversation.store import InMemorySessionStore, SessionBusy, SqliteSessionStore
from conversation.stores import is_shared, open_store
from conversation.store_redis import RedisSessionStore
from tests.api_support import make_service, redis_server


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "memory":
        made = InMemorySessionStore(lock_wait_s=0.3)
    elif request.param == "sqlite":
        made = SqliteSessionStore(tmp_path / "s.db", lock_wait_s=0.3)
    else:
        made = RedisSessionStore(request.getfixturevalue("redis_url"), prefix=f"t{time.monotonic_ns()}:",
                                 lock_wait_s=0.3)
    yield made
    if hasattr(made, "close"):
        made.close()


def _state(session_id: str = "s1") -> ConvState:
    return ConvState(session_id=session_id, user_id="u", turn=2, accepted=[Attr(type="genre", value="Comedy")],
                     history=[ChatTurn(role="user", text="funny \u00e9\U0001f3ac"), ChatTurn(role="assistant", text="ok")])


def test_round_trip_copy_and_delete(store):
    state = _state()
    store.put(state)
    state.turn = 99  # the stored copy must not change with the caller's object
    got = store.get("s1")
    assert got == _state() and got is not state
    assert store.get("other") is None
    assert store.delete("s1") is True and store.delete("s1") is False
    assert store.get("s1") is None


def test_lock_serialises_one_session_but_not_others(store):
    with store.lock("a"):
        with store.lock("b"):  # another session is independent
            pass
        started = time.monotonic()
        with pytest.raises(SessionBusy):
            with ThreadPoolExecutor(1) as pool:  # a different thread (and, for Redis, a different owner)
                pool.submit(lambda: store.lock("a").__enter__()).result()
        assert time.monotonic() - started >= 0.25
    with store.lock("a"):  # released: free again
        pass


def test_sqlite_survives_reopening_and_uses_wal(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    first = SqliteSessionStore(path)
    first.put(_state("keep"))
    first.close()
    again = SqliteSessionStore(path)
    assert again.get("keep") == _state("keep")
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_sqlite_forgets_sessions_idle_past_the_ttl(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    store = SqliteSessionStore(path, ttl_s=3600)
    store.put(_state("old"))
    store.put(_state("new"))
    store._db.execute("UPDATE sessions SET updated_at = updated_at - 7200 WHERE id = 'old'")
    store.close()
    reopened = SqliteSessionStore(path, ttl_s=3600)
    assert reopened.get("old") is None and reopened.get("new") == _state("new")
    reopened.close()


def test_redis_sessions_expire_when_idle(redis_url):
    store = RedisSessionStore(redis_url, ttl_s=120, prefix="ttl:")
    store.put(_state("idle"))
    assert 0 < store.client.ttl("ttl:session:idle") <= 120


def test_open_store_reads_the_setting(tmp_path, redis_url):
    assert isinstance(open_store("memory", data_dir=tmp_path, ttl_s=60), InMemorySessionStore)
    default = open_store("sqlite", data_dir=tmp_path / "d", ttl_s=60)
    assert default.path == tmp_path / "d" / "sessions.sqlite3"
    explicit = open_store(f"sqlite:///{tmp_path}/x.db", data_dir=tmp_path, ttl_s=60)
    assert explicit.path == tmp_path / "x.db"
    assert isinstance(open_store(redis_url, data_dir=tmp_path, ttl_s=60), RedisSessionStore)
    assert is_shared(redis_url) and not is_shared("sqlite")
    with pytest.raises(ValueError, match="session_store must be"):
        open_store("postgres://x", data_dir=tmp_path, ttl_s=60)


def test_a_new_service_on_the_same_sqlite_file_continues_the_conversation(tmp_path):
    path = tmp_path / "s.db"
    before = make_service(store=SqliteSessionStore(path), recommend_below=1, max_questions=2)
    sid = before.start(user_id="ana")
    asked = before.respond(sid, "something funny").action.attribute
    before.store.close()
    after = make_service(store=SqliteSessionStore(path), recommend_below=1, max_questions=2)  # a "restart"
    result = after.respond(sid, "yes")
    assert result.turn == 2 and asked in after.state(sid).accepted and after.state(sid).user_id == "ana"


def test_two_services_sharing_redis_never_interleave_a_sessions_turns(redis_url):
    """Two "workers" send turns to one session at once: the Redis lock keeps every turn (no lost update)."""
    workers = [make_service(store=RedisSessionStore(redis_url, prefix="pair:"), recommend_below=10) for _ in range(2)]
    sid = workers[0].start()
    barrier = threading.Barrier(8)

    def turn(n: int) -> int:
        barrier.wait()
        return workers[n % 2].respond(sid, f"comedy {n}").turn

    with ThreadPoolExecutor(8) as pool:
        turns = sorted(pool.map(turn, range(8)))
    assert turns == list(range(1, 9))
    state = workers[1].state(sid)
    assert state.turn == 8 and len(state.history) == 16
    assert [t.role for t in state.history] == ["user", "assistant"] * 8  # each turn's pair stays together
