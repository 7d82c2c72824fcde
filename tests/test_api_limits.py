"""Limits and safety: 401, 404, 409, 413, 422, 429 and 504 each come with a reason; CORS; no tracebacks leak."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from agent.llm import ScriptedChatModel
from conversation.store import InMemorySessionStore
from tests.api_support import make_app, make_service, parse_sse


def _client(service=None, **limits) -> TestClient:
    return TestClient(make_app(service, **limits))


def _session(client: TestClient) -> str:
    return client.post("/v1/sessions").json()["session_id"]


@pytest.mark.parametrize("method,path", [("GET", "/v1/sessions/nope"), ("DELETE", "/v1/sessions/nope"),
                                         ("POST", "/v1/sessions/nope/messages"), ("GET", "/v1/sessions/" + "x" * 500)])
def test_unknown_session_is_404_with_a_reason(method, path):
    response = _client().request(method, path, json={"text": "hi"} if method == "POST" else None)
    assert response.status_code == 404 and response.json() == {"detail": "unknown session"}


def test_oversized_body_is_413_by_content_length_and_by_bytes_received():
    client = _client(max_body_bytes=2048)
    sid = _session(client)
    big = {"text": "x" * 1900, "pad": "y" * 1000}
    declared = client.post(f"/v1/sessions/{sid}/messages", json=big)
    assert declared.status_code == 413 and "2048 bytes" in declared.json()["detail"]

    def chunks():  # no Content-Length: the server must count what arrives
        for _ in range(10):
            yield b"x" * 1000

    streamed = client.post(f"/v1/sessions/{sid}/messages", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and "too large" in streamed.json()["detail"]
    assert client.get(f"/v1/sessions/{sid}").json()["turn"] == 0  # nothing reached the service


@pytest.mark.parametrize("body,where", [({"text": "x" * 2001}, "body.text: String should have at most 2000"),
                                        ({}, "body.text: Field required"), ({"text": 5}, "body.text"),
                                        ({"text": "hi", "extra": 1}, "body.extra")])
def test_invalid_message_is_422_with_a_reason(body, where):
    client = _client()
    response = client.post(f"/v1/sessions/{_session(client)}/messages", json=body)
    assert response.status_code == 422 and response.json()["detail"].startswith(where)
    assert "x" * 100 not in response.text  # the invalid input is not echoed back


def test_session_rate_limit_is_429_with_retry_after():
    client = _client(rate_session_burst=2, rate_session_per_min=6)
    sid, other = _session(client), _session(client)
    codes = [client.post(f"/v1/sessions/{sid}/messages", json={"text": "comedy"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = client.post(f"/v1/sessions/{sid}/messages", json={"text": "comedy"})
    assert limited.status_code == 429 and "in this session" in limited.json()["detail"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 10
    assert client.post(f"/v1/sessions/{other}/messages", json={"text": "comedy"}).status_code == 200


def test_client_rate_limit_is_429_for_that_client_only():
    app = make_app(rate_client_burst=3, rate_client_per_min=1)
    client, neighbour = TestClient(app), TestClient(app, client=("10.0.0.2", 50000))
    codes = [client.post("/v1/sessions").status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    limited = client.get("/v1/items/1")
    assert limited.status_code == 429 and "from this client" in limited.json()["detail"]
    assert int(limited.headers["Retry-After"]) >= 30
    assert neighbour.post("/v1/sessions").status_code == 201
    assert client.get("/healthz").status_code == 200  # probes are not rate limited


def test_api_key_when_configured():
    client = _client(api_key="s3cret")
    assert client.post("/v1/sessions").status_code == 401
    wrong = client.post("/v1/sessions", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401 and "X-API-Key" in wrong.json()["detail"]
    assert client.post("/v1/sessions", headers={"X-API-Key": "s3cret"}).status_code == 201
    assert client.get("/readyz").status_code == 200  # probes stay open for the orchestrator


def test_cors_allows_only_the_configured_origins():
    client = _client(cors_origins=["https://shop.example"])
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = client.options("/v1/sessions", headers={"Origin": "https://shop.example", **preflight})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://shop.example"
    other = client.options("/v1/sessions", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    created = client.post("/v1/sessions", headers={"Origin": "https://shop.example"})
    assert created.headers["access-control-allow-origin"] == "https://shop.example"
    assert "access-control-allow-origin" not in _client().post("/v1/sessions", headers={"Origin": "https://shop.example"}).headers


def test_slow_turn_hits_the_deadline_without_hanging():
    release = threading.Event()
    service = make_service(model=ScriptedChatModel(default=lambda _request: (release.wait(30), "late")[1]))
    client = _client(service, turn_deadline_s=0.3)
    sid = _session(client)
    started = time.monotonic()
    try:
        late = client.post(f"/v1/sessions/{sid}/messages", json={"text": "funny animated"})
        assert late.status_code == 504 and "deadline" in late.json()["detail"]
        with client.stream("POST", f"/v1/sessions/{sid}/messages", json={"text": "comedy"},
                           headers={"Accept": "text/event-stream"}) as response:
            events = parse_sse(response.read().decode())
        assert events[-1][0] == "error" and "deadline" in events[-1][1]["detail"]
        assert time.monotonic() - started < 20  # both answered while the first turn is still stuck (up to 30 s)
    finally:
        release.set()


def test_a_busy_session_is_409():
    store = InMemorySessionStore(lock_wait_s=0.1)
    client = _client(make_service(store=store))
    sid = _session(client)
    with store.lock(sid):  # a turn of this session is running elsewhere
        busy = client.post(f"/v1/sessions/{sid}/messages", json={"text": "comedy"})
        assert busy.status_code == 409 and "still running" in busy.json()["detail"]
        streamed = client.post(f"/v1/sessions/{sid}/messages", json={"text": "comedy"},
                               headers={"Accept": "text/event-stream"})
        assert parse_sse(streamed.text)[-1] == ("error", {"detail": busy.json()["detail"]})


def test_a_crash_inside_a_turn_is_a_plain_500_without_a_traceback():
    service = make_service(model=ScriptedChatModel(default=ZeroDivisionError("secret internals")))
    client = TestClient(make_app(service), raise_server_exceptions=False)
    response = client.post(f"/v1/sessions/{_session(client)}/messages", json={"text": "funny animated"})
    assert response.status_code == 500 and response.json() == {"detail": "internal error"}
    assert "secret" not in response.text and "Traceback" not in response.text
