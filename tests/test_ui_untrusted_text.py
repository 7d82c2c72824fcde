"""Catalog and LLM text in the Gradio UI is shown as the characters it is: no image, link, heading or tag
from data renders, and nothing is fetched from anywhere but the app (a real browser, issue 17)."""

from __future__ import annotations

import os

import pytest

from agent.llm import ScriptedChatModel
from agent.policy import PolicyConfig
from conversation.service import ConversationService, ServiceConfig
from retrieval.catalog import Catalog, Interaction, Item
from tests.browser import CHROMIUM_ARGS, chromium_path, local_only, serving

pytestmark = pytest.mark.browser
EVIL = "attacker.example"
TITLE = f"Bad ![pixel](http://{EVIL}/t.png) [win](http://{EVIL}/w) <img src=http://{EVIL}/i.png> # Heading"
TAG = f"<img src=http://{EVIL}/tag.png>"
LEAD = f"Try these ![lead](http://{EVIL}/lead.png) <img src=http://{EVIL}/lead2.png>"


def _catalog() -> Catalog:
    rows = [("1", TITLE, ["Comedy"], [TAG]), ("2", "Clean Comedy (1999)", ["Comedy"], ["funny"]),
            ("3", "Another Comedy (2001)", ["Comedy"], ["funny"])]
    items = [Item(id=i, title=t, text=t, attributes={"genre": g, "tag": tags}, keywords=["comedy"])
             for i, t, g, tags in rows]
    interactions = [Interaction(user=f"u{n}", item=i, rating=4.0) for i, c in (("1", 5), ("2", 2), ("3", 1))
                    for n in range(c)]
    return Catalog(name=f"shop ![n](http://{EVIL}/name.png)", items=items, interactions=interactions)


def test_data_and_llm_text_render_as_plain_text():
    from playwright.sync_api import expect, sync_playwright

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    service = ConversationService(_catalog(), model=ScriptedChatModel(default=LEAD),
                                  config=ServiceConfig(policy=PolicyConfig(recommend_below=5)))
    from ui.api import create_app

    with serving(create_app(service)) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        outside: list[str] = []
        page.route("**/*", lambda route: local_only(route, url, outside))
        page.goto(url + "/ui/", wait_until="domcontentloaded", timeout=60_000)
        box = page.locator("#message textarea")
        box.wait_for(timeout=60_000)
        box.fill("a comedy please")
        box.press("Enter")
        expect(page.locator("#cards .card").first).to_be_visible(timeout=60_000)
        expect(page.locator("#trace")).to_contain_text("Turn 1", timeout=30_000)
        page.wait_for_timeout(500)
        for panel in ("#chat", "#trace", "#cards"):
            assert page.locator(f"{panel} img").count() == 0, f"an image rendered in {panel}"
            assert page.locator(f"{panel} a[href*='{EVIL}']").count() == 0, f"a link from data in {panel}"
        assert page.locator("#trace h1, #chat h1").count() == 0
        expect(page.locator("#chat")).to_contain_text("![pixel]")  # shown as typed, not rendered
        expect(page.locator("#chat")).to_contain_text(f"<img src=http://{EVIL}/i.png>")
        expect(page.locator("#chat")).to_contain_text("![lead]")  # the LLM's sentence too
        expect(page.locator("#cards")).to_contain_text("<img src=")
        browser.close()
    assert not outside, f"the UI fetched from outside the app: {outside}"
