"""mount_web serves the widget and the demo page and mounts Gradio; the Gradio handler keeps no state of its own."""

import os

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agent.llm import ScriptedChatModel
from agent.policy import PolicyConfig
from conversation.service import ConversationService, ServiceConfig
from agent.state import Action, Recommendation, Trace, TurnResult
from tests.helpers import lead_reply, tiny_movies


@pytest.fixture(scope="module")
def service():
    config = ServiceConfig(policy=PolicyConfig(recommend_below=2, max_questions=2))
    return ConversationService(tiny_movies(), model=ScriptedChatModel(default=lead_reply("Happy to help.")), config=config)


@pytest.fixture(scope="module")
def client(service):
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ui.web import mount_web

    app = FastAPI()
    mount_web(app, service)
    return TestClient(app)


def test_widget_js_is_served_as_javascript(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "window.ConciergeWidget" in response.text
    assert "text/event-stream" in response.text and "X-API-Key" in response.text


def test_demo_page_embeds_the_widget_and_shows_catalog_items(client):
    response = client.get("/demo")
    assert response.status_code == 200
    assert '<script src="widget.js"' in response.text
    assert "Toy Story (1995)" in response.text and "tiny-movies" in response.text
    assert "$" not in response.text.split("<body>")[1].split("<script")[0]  # every placeholder filled


def test_demo_page_escapes_catalog_text():
    from retrieval.catalog import Catalog, Item
    from ui.web import demo_page

    catalog = Catalog(name="<b>shop</b>", items=[Item(id="1", title="<script>x</script>", text="t")])
    page = demo_page(catalog)
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "&lt;b&gt;shop&lt;/b&gt;" in page


def test_gradio_is_mounted_at_ui(client):
    response = client.get("/ui/")
    assert response.status_code == 200
    assert "gradio" in response.text.lower()


def test_each_browser_gets_its_own_session_and_the_reply_streams(service):
    from ui.gradio_app import make_handler

    handler = make_handler(service)
    runs = [list(handler("something funny", [], None)) for _ in range(2)]
    sessions = [run[-1][1] for run in runs]
    assert sessions[0] != sessions[1] and all(sessions)
    streamed = [out[0][-1]["content"] for out in runs[0][1:-1]]
    assert len(streamed) >= 2 and streamed[-1].startswith(streamed[0])  # the bot text grew chunk by chunk
    final = runs[0][-1]
    assert final[0][-1]["content"].startswith("Happy to help.")
    assert "LLM calls** (1)" in final[4] and "ms" in final[4]
    # the next message continues this browser's conversation, not the other one
    more = list(handler("Yes", final[0], sessions[0]))
    assert more[-1][1] == sessions[0]
    assert service.state(sessions[0]).turn == 2 and service.state(sessions[1]).turn == 1


def test_cards_show_reasons_and_escape_text():
    from ui.gradio_app import cards_html

    items = [Recommendation(item_id="1", title="<i>Toy</i>", reason="matches Comedy; from the 1990s",
                            reasons=["matches Comedy", "from the 1990s"])]
    result = TurnResult(session_id="s", turn=1, action=Action(kind="recommend", items=items), text="x", trace=Trace())
    html = cards_html(result)
    assert html.count('class="card"') == 1
    assert "<li>matches Comedy</li><li>from the 1990s</li>" in html
    assert "<i>" not in html and "&lt;i&gt;Toy&lt;/i&gt;" in html
