"""Real `concierge serve` processes: a killed server's conversations continue after a restart (SQLite), and two
servers sharing a real redis-server continue one conversation turn by turn, whichever serves the turn."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from typer.testing import CliRunner

from ui.cli import app as cli
from tests.api_support import Server, parse_sse, redis_server, server_env


def _say(server: Server, sid: str, text: str) -> dict:
    response = httpx.post(f"{server.url}/v1/sessions/{sid}/messages", json={"text": text}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_killed_server_continues_every_conversation_after_restart(tmp_path):
    env = server_env(tmp_path, f"sqlite:///{tmp_path}/sessions.sqlite3")
    server = Server(env, tmp_path).wait_ready()
    try:
        sid = httpx.post(f"{server.url}/v1/sessions", json={"user_id": "ana"}).json()["session_id"]
        first = _say(server, sid, "something funny")
        assert first["action"]["kind"] == "ask"
        asked = first["action"]["attribute"]
        other = httpx.post(f"{server.url}/v1/sessions").json()["session_id"]
        _say(server, other, "horror")
    finally:
        server.kill()  # mid-conversation, no clean shutdown
    server = Server(env, tmp_path).wait_ready()
    try:
        view = httpx.get(f"{server.url}/v1/sessions/{sid}").json()
        assert view["turn"] == 1 and view["user_id"] == "ana" and len(view["history"]) == 2
        second = _say(server, sid, "yes")  # answers the question the killed server asked
        assert second["turn"] == 2
        assert asked in httpx.get(f"{server.url}/v1/sessions/{sid}").json()["accepted"]
        assert httpx.get(f"{server.url}/v1/sessions/{other}").json()["turn"] == 1
    finally:
        server.stop()


def test_two_servers_sharing_redis_serve_one_conversation_alternately(tmp_path):
    with redis_server() as url:
        env = server_env(tmp_path, url)
        servers = [Server(env, tmp_path, factory=True), Server(env, tmp_path, factory=True)]  # as `serve --workers 2`
        try:
            a, b = (s.wait_ready() for s in servers)
            sid = httpx.post(f"{a.url}/v1/sessions").json()["session_id"]
            first = _say(a, sid, "something funny")
            assert first["action"]["kind"] == "ask"
            second = _say(b, sid, "yes")  # B reads the question A asked, and the answer lands on it
            assert second["turn"] == 2
            assert first["action"]["attribute"] in httpx.get(f"{a.url}/v1/sessions/{sid}").json()["accepted"]
            with httpx.stream("POST", f"{a.url}/v1/sessions/{sid}/messages", json={"text": "no"},
                              headers={"Accept": "text/event-stream"}, timeout=60) as response:
                events = parse_sse(response.read().decode())
            assert events[-1][0] == "result" and events[-1][1]["turn"] == 3
            with ThreadPoolExecutor(4) as pool:  # both servers at once on the same session: the Redis lock orders them
                turns = sorted(pool.map(lambda n: _say((a, b)[n % 2], sid, "comedy")["turn"], range(4)))
            assert turns == [4, 5, 6, 7]
            view = httpx.get(f"{b.url}/v1/sessions/{sid}").json()
            assert view["turn"] == 7 and len(view["history"]) == 14
            assert httpx.delete(f"{b.url}/v1/sessions/{sid}").status_code == 204
            assert httpx.get(f"{a.url}/v1/sessions/{sid}").status_code == 404
        finally:
            for server in servers:
                server.stop()


def test_several_workers_need_a_shared_store(monkeypatch):
    monkeypatch.setenv("CONCIERGE_SESSION_STORE", "sqlite")
    result = CliRunner().invoke(cli, ["serve", "--workers", "2"])
    assert result.exit_code == 2 and "redis://" in result.output


@pytest.mark.parametrize("store", ["redis://127.0.0.1:1/0"])
def test_several_workers_report_an_unreachable_redis(monkeypatch, store):
    monkeypatch.setenv("CONCIERGE_SESSION_STORE", store)
    result = CliRunner().invoke(cli, ["serve", "--workers", "2"])
    assert result.exit_code == 2 and "cannot reach the session store" in result.output
