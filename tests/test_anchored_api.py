"""Item-anchored chat through the HTTP API with the real model, the real embedder and the demo catalog.

Uses the indexes `concierge setup` builds (`make test` runs it first), as a served deployment does.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from conversation.settings import Settings
from ui.api import create_app

pytestmark = [pytest.mark.local_llm, pytest.mark.embeddings]

REQUESTS = {
    "Something like Toy Story please": ["Toy Story (1995)"],
    "like the matrix": ["Matrix, The (1999)"],
    "I loved The Dark Knight and Heat, what else would I like?": ["Dark Knight, The (2008)", "Heat (1995)"],
}


@pytest.fixture(scope="module")
def client():
    settings = Settings(session_store="memory", web_ui=False, _env_file=None)
    with TestClient(create_app(settings=settings)) as test_client:
        yield test_client


@pytest.mark.parametrize("text", list(REQUESTS))
def test_anchored_request_gets_the_anchors_genres_and_none_of_the_named_movies(client, text):
    session = client.post("/v1/sessions", json={}).json()["session_id"]
    reply = client.post(f"/v1/sessions/{session}/messages", json={"text": text})
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["action"]["kind"] == "recommend"
    assert result["trace"]["understood"]["liked_items"] == REQUESTS[text]
    catalog = client.app.state.concierge.service.catalog
    by_title = {item.title: item for item in catalog.items.values()}
    anchor_genres = {g for title in REQUESTS[text] for g in by_title[title].attributes["genre"]}
    items = result["action"]["items"][:5]
    assert len(items) == 5
    for item in items:
        assert item["title"] not in REQUESTS[text]
        assert anchor_genres & set(catalog.items[item["item_id"]].attributes["genre"]), item["title"]
    assert result["text"].strip()
