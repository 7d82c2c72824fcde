"""The HTTP API over the tiny catalog with the scripted model: sessions, turns as JSON and as SSE, items, probes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from agent.llm import ScriptedChatModel
from agent.state import TurnResult
from tests.api_support import make_app, make_service, parse_sse


@pytest.fixture
def service():
    return make_service(model=ScriptedChatModel(default="Two picks for you."))


@pytest.fixture
def client(service):
    with TestClient(make_app(service)) as test_client:
        yield test_client


def _session(client: TestClient, **body) -> str:
    response = client.post("/v1/sessions", json=body or None)
    assert response.status_code == 201
    return response.json()["session_id"]


def test_a_conversation_over_http(client, service):
    sid = _session(client, user_id="ana")
    response = client.post(f"/v1/sessions/{sid}/messages", json={"text": "a funny animated movie"})
    assert response.status_code == 200
    result = TurnResult.model_validate(response.json())
    assert result.session_id == sid and result.turn == 1
    assert [r.item_id for r in result.action.items] == ["1", "2"]
    assert result.text.startswith("Two picks for you.") and "Toy Story (1995)" in result.text
    view = client.get(f"/v1/sessions/{sid}").json()
    assert view["user_id"] == "ana" and view["turn"] == 1 and view["last_shown"] == ["1", "2"]
    assert [t["role"] for t in view["history"]] == ["user", "assistant"]
    assert view["history"][0]["text"] == "a funny animated movie"
    assert {"type": "genre", "value": "Animation"} in view["accepted"]


def test_create_session_without_a_body(client):
    assert client.post("/v1/sessions").status_code == 201
    sid = _session(client)
    assert client.get(f"/v1/sessions/{sid}").json()["user_id"] is None


def test_streaming_sends_tokens_then_the_result(client):
    sid = _session(client)
    with client.stream("POST", f"/v1/sessions/{sid}/messages", json={"text": "funny animated"},
                       headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.read().decode())
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "result" and set(kinds[:-1]) == {"token"} and len(kinds) > 2
    result = TurnResult.model_validate(events[-1][1])
    assert "".join(data["text"] for _, data in events[:-1]) == result.text
    assert client.get(f"/v1/sessions/{sid}").json()["turn"] == 1


def test_streaming_reports_an_unknown_session_before_streaming(client):
    response = client.post("/v1/sessions/nope/messages", json={"text": "hi"}, headers={"Accept": "text/event-stream"})
    assert response.status_code == 404 and response.json() == {"detail": "unknown session"}


def test_delete_forgets_the_session(client):
    sid = _session(client)
    assert client.delete(f"/v1/sessions/{sid}").status_code == 204
    for response in (client.get(f"/v1/sessions/{sid}"), client.delete(f"/v1/sessions/{sid}"),
                     client.post(f"/v1/sessions/{sid}/messages", json={"text": "hi"})):
        assert response.status_code == 404 and response.json()["detail"] == "unknown session"


def test_sessions_are_unguessable_and_isolated(client):
    a, b = _session(client, user_id="a"), _session(client, user_id="b")
    assert a != b and len(a) >= 22 and len({_session(client) for _ in range(20)}) == 20
    client.post(f"/v1/sessions/{a}/messages", json={"text": "horror"})
    other = client.get(f"/v1/sessions/{b}").json()
    assert other["turn"] == 0 and other["history"] == [] and other["accepted"] == [] and other["user_id"] == "b"
    assert client.get(f"/v1/sessions/{a[:-1]}").status_code == 404  # a near miss is just unknown


def test_items(client):
    item = client.get("/v1/items/4").json()
    assert item == {"id": "4", "title": "Alien (1979)", "text": "Alien (1979). Horror Sci-Fi",
                    "attributes": {"genre": ["Horror", "Sci-Fi"], "decade": ["1970s"], "tag": ["space", "creepy"]}}
    missing = client.get("/v1/items/nope")
    assert missing.status_code == 404 and missing.json() == {"detail": "unknown item"}


def test_probes_and_docs(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "catalog": "tiny-movies", "items": 8,
                                            "store": "InMemorySessionStore"}
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/v1/sessions", "/v1/sessions/{session_id}/messages", "/v1/sessions/{session_id}",
                                  "/v1/items/{item_id}", "/healthz", "/readyz"}
    message = spec["paths"]["/v1/sessions/{session_id}/messages"]["post"]
    assert {"200", "404", "413", "422", "429", "504"} <= set(message["responses"])
    assert "text/event-stream" in message["responses"]["200"]["content"]
    assert client.get("/docs").status_code == 200


def test_web_pages_are_not_mounted_when_switched_off(client):
    assert client.get("/demo").status_code == 404
