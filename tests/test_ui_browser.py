"""The widget on /demo and the Gradio UI at /ui, in headless Chromium against a real server.

Screenshots go to each test's temporary folder; the README's are made by `python -m ui.screenshot`
(`make screenshots`)."""

import functools
import json
import os
import time
from pathlib import Path

import pytest

from agent.llm import ScriptedChatModel
from agent.policy import PolicyConfig
from conversation.service import ConversationService, ServiceConfig
from tests.browser import CHROMIUM_ARGS, SlowTokens, chromium_path, free_port, local_only, running_server, serving
from tests.helpers import lead_reply, tiny_movies

REPLY = lead_reply("Sure, I can help you narrow that down.")  # ask turns: a question naming the asked value

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server_url():
    """The real app (API + widget + demo + Gradio) on a tiny catalog, served by uvicorn on a free port."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    model = SlowTokens(ScriptedChatModel(default=REPLY), chunk_delay_s=0.12)
    config = ServiceConfig(policy=PolicyConfig(recommend_below=2, max_questions=2))
    service = ConversationService(tiny_movies(), model=model, config=config)
    with serving(_app(service)) as url:
        yield url


def _app(service):
    from ui.api import create_app

    return create_app(service)


@pytest.fixture()
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _page(browser, url: str | tuple[str, ...], outside: list[str]):
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.route("**/*", lambda route: local_only(route, url, outside))
    return page


def _watch_growth(page, js_text: str, *, done_js: str, timeout_s: float = 30.0) -> list[int]:
    """Poll the length of some streaming text until `done_js` holds; returns the distinct lengths seen."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        length = page.evaluate(js_text)
        if length and (not seen or length != seen[-1]):
            seen.append(length)
        if page.evaluate(done_js):
            return seen
        page.wait_for_timeout(40)
    raise AssertionError(f"the reply did not finish in {timeout_s}s (lengths seen: {seen})")


SHADOW = "document.querySelector('#concierge-widget').shadowRoot"


def test_demo_widget_streams_text_and_shows_cards(server_url, browser, tmp_path):
    from playwright.sync_api import expect

    outside: list[str] = []
    page = _page(browser, server_url, outside)
    page.goto(server_url + "/demo", wait_until="domcontentloaded", timeout=30_000)
    bubble = page.get_by_role("button", name="Open chat with Shop concierge")
    bubble.wait_for(timeout=15_000)
    for _ in range(12):  # keyboard only: Tab through the shop's links until the bubble has focus
        page.keyboard.press("Tab")
        if page.evaluate(f"{SHADOW}.activeElement?.classList.contains('bubble')"):
            break
    else:
        pytest.fail("Tab never reached the chat bubble")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Shop concierge chat")
    expect(dialog).to_be_visible()
    box = dialog.get_by_role("textbox", name="Your message")
    expect(box).to_be_focused()
    page.keyboard.type("I'd like something funny")
    page.keyboard.press("Enter")
    lengths = _watch_growth(
        page, f"{SHADOW}.querySelector('.msg.bot.pending .text')?.textContent.length || 0",
        done_js=f"!{SHADOW}.querySelector('.msg.bot.pending')", timeout_s=90,
    )
    assert len(lengths) >= 2 and lengths == sorted(lengths), f"text did not stream: {lengths}"
    expect(dialog.locator(".msg.bot").last).to_contain_text("narrow that down")

    for _ in range(4):  # answer the asked attribute with a quick reply, by keyboard, until items appear
        if dialog.locator(".card").count():
            break
        quick = dialog.get_by_role("group", name="Quick replies about", exact=False)
        expect(quick).to_be_visible()
        expect(quick.get_by_role("button", name="Yes")).to_be_visible()
        page.keyboard.press("Shift+Tab")  # from the message box back into the quick replies
        focused = page.evaluate(f"{SHADOW}.activeElement?.textContent")
        assert focused in ("Yes", "No", "Doesn't matter"), focused
        quick.get_by_role("button", name="Yes").focus()
        page.keyboard.press("Enter")
        expect(dialog.locator(".msg.bot.pending")).to_have_count(0, timeout=90_000)
    cards = dialog.locator(".card")
    expect(cards.first).to_be_visible()
    first = cards.first.inner_text()
    assert "matches" in first, first  # the reason names what the user accepted, from the item's attributes
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(f"{SHADOW}.activeElement?.classList.contains('card')"), "Tab does not reach the cards"
    page.screenshot(path=str(tmp_path / "demo-widget.png"))

    # A reload continues the same conversation; Escape closes the panel and gives focus back to the bubble.
    saved = json.loads(page.evaluate("Object.values({...sessionStorage})[0]"))
    page.reload(wait_until="domcontentloaded")
    expect(dialog.locator(".card").first).to_be_visible(timeout=15_000)
    again = json.loads(page.evaluate("Object.values({...sessionStorage})[0]"))
    assert again["sessionId"] == saved["sessionId"]
    dialog.get_by_role("textbox", name="Your message").focus()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.evaluate(f"{SHADOW}.activeElement?.classList.contains('bubble')")
    page.close()
    assert not outside, f"the page tried to reach the network: {outside}"


def test_demo_widget_shows_clear_errors(server_url, browser):
    from playwright.sync_api import expect

    outside: list[str] = []
    page = _page(browser, server_url, outside)
    page.goto(server_url + "/demo", wait_until="domcontentloaded", timeout=30_000)
    page.get_by_role("button", name="Open chat with Shop concierge").click()
    dialog = page.get_by_role("dialog", name="Shop concierge chat")
    box = dialog.get_by_role("textbox", name="Your message")
    cases = [
        (lambda route: route.fulfill(status=429, json={"detail": "slow down"}), "Too many messages"),
        (lambda route: route.fulfill(status=500, json={"detail": "boom"}), "had a problem (500)"),
        (lambda route: route.abort("connectionrefused"), "Could not reach the assistant"),
    ]
    for handler, message in cases:
        page.route("**/v1/sessions/*/messages", handler)
        box.fill("something funny")
        box.press("Enter")
        expect(dialog.get_by_role("alert").last).to_contain_text(message, timeout=30_000)
        page.unroute("**/v1/sessions/*/messages")
    dialog.get_by_role("alert").last.get_by_role("button", name="Try again").click()
    expect(dialog.locator(".msg.bot").last).to_contain_text("narrow that down", timeout=90_000)
    page.close()


def test_widget_embedded_cross_origin_with_api_key(browser):
    """A shop on another origin embeds the widget: CORS lets it in, the key is sent, a wrong key is refused."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse
    from playwright.sync_api import expect
    from pydantic import SecretStr

    from ui.api import create_app
    from ui.api_models import ApiConfig

    shop, pages = FastAPI(), {}
    shop.get("/{name}")(lambda name: HTMLResponse(pages[name]))
    service = ConversationService(tiny_movies(), model=ScriptedChatModel(default=REPLY))
    with serving(shop) as shop_url:
        config = ApiConfig(cors_origins=[shop_url], api_key=SecretStr("shop-key"), mount_web=True)
        with serving(create_app(service, api_config=config)) as api_url:
            for name, key in (("good", "shop-key"), ("bad", "wrong")):
                pages[name] = (f'<!doctype html><title>{name}</title><h1>Another shop</h1><script src="{api_url}/widget.js"'
                               f' data-api-base="{api_url}" data-api-key="{key}" data-title="Help" defer></script>')
            outside: list[str] = []
            for name, expected in (("good", "narrow that down"), ("bad", "access refused")):
                page = _page(browser, (shop_url, api_url), outside)  # a new tab: its own sessionStorage
                page.goto(f"{shop_url}/{name}", wait_until="domcontentloaded", timeout=30_000)
                page.get_by_role("button", name="Open chat with Help").click()
                box = page.get_by_role("dialog", name="Help chat").get_by_role("textbox", name="Your message")
                box.fill("something funny")
                box.press("Enter")
                expect(page.get_by_role("dialog", name="Help chat")).to_contain_text(expected, timeout=30_000)
                page.close()
    assert not outside, f"the page tried to reach the network: {outside}"


def test_gradio_ui_streams_text_cards_and_trace(server_url, browser, tmp_path):
    from playwright.sync_api import expect

    outside: list[str] = []
    page = _page(browser, server_url, outside)
    page.goto(server_url + "/ui/", wait_until="domcontentloaded", timeout=60_000)
    box = page.locator("#message textarea")
    box.wait_for(timeout=60_000)
    box.fill("I'd like something funny")
    box.press("Enter")
    lengths = _watch_growth(
        page, "document.querySelector('#chat')?.innerText.length || 0",
        done_js="document.querySelector('#trace')?.innerText.includes('Turn 1')", timeout_s=90,
    )
    assert len(lengths) >= 3 and lengths == sorted(lengths), f"text did not stream: {lengths}"
    quick = page.locator("#quick-replies")
    settled = "() => !!document.querySelector('#cards .card') || !!document.querySelector('#quick-replies')?.offsetParent"
    for turn in range(2, 6):  # the trace names each finished turn: answer "Yes" until items appear
        page.wait_for_function(settled, timeout=30_000)
        if page.locator("#cards .card").count():
            break
        expect(quick).to_contain_text("Quick reply about")
        quick.get_by_role("button", name="Yes").click()
        expect(page.locator("#trace")).to_contain_text(f"Turn {turn}", timeout=90_000)
    expect(page.locator("#cards .card").first).to_be_visible()
    expect(page.locator("#cards .card").first).to_contain_text("matches")
    expect(page.locator("#trace")).to_contain_text("LLM calls")
    expect(page.locator("#trace")).to_contain_text("ms")
    page.wait_for_timeout(300)
    page.screenshot(path=str(tmp_path / "gradio-ui.png"), full_page=True)
    page.locator("#restart").click()  # a new conversation for this browser: cards and transcript cleared
    expect(page.locator("#cards")).to_contain_text("Recommendations will appear here", timeout=30_000)
    expect(page.locator("#chat")).not_to_contain_text("I'd like something funny", timeout=30_000)
    page.close()
    assert not outside, f"the UI tried to reach the network: {outside}"


@pytest.mark.local_llm
def test_chat_ui_names_real_movies(tmp_path):
    """`concierge chat` for real (embedded LLM, bundled catalog): the single-user shortcut still works."""
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    with running_server(["chat", "--port", str(port)], port=port, log=tmp_path / "server.log") as url:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            outside: list[str] = []
            page.route("**/*", lambda route: local_only(route, url, outside))
            page.goto(url, wait_until="domcontentloaded", timeout=90_000)
            box = page.locator("#message textarea")
            box.wait_for(timeout=90_000)
            box.fill("I'd like a funny animated movie")
            box.press("Enter")
            chat, quick = page.locator("#chat"), page.locator("#quick-replies")
            cards = page.locator("#cards .card")
            for _ in range(4):  # answer "Doesn't matter" until it recommends
                page.wait_for_function(
                    "() => !!document.querySelector('#cards .card')"
                    " || !!document.querySelector('#quick-replies')?.offsetParent",
                    timeout=120_000,
                )
                if cards.count():
                    break
                quick.get_by_role("button", name="Doesn't matter").click()
                expect(quick).to_be_hidden(timeout=30_000)
            # the turn is over (reply streamed, cards and trace drawn) before the screenshot is taken
            expect(cards.first).to_be_visible(timeout=120_000)
            ids = [cards.nth(i).get_attribute("data-item-id") for i in range(cards.count())]
            assert ids and all(_animated_comedy(i) for i in ids), ids  # real catalog movies that fit the request
            expect(chat).to_contain_text(catalog_title(ids[0]), timeout=30_000)  # the transcript names them too
            expect(page.locator("#trace")).to_contain_text(": recommend in", timeout=30_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "ui-chat.png"), full_page=True)
            browser.close()
    assert not outside, f"the UI tried to reach the network: {outside}"


@functools.cache
def _bundled():
    from retrieval.loaders import load_catalog

    return load_catalog(Path(__file__).resolve().parents[1] / "data" / "movielens-latest-small")


def _animated_comedy(item_id: str) -> bool:
    genres = set(_bundled().items[item_id].attributes.get("genre", []))
    return {"Animation", "Comedy"} <= genres


def catalog_title(item_id: str) -> str:
    return _bundled().items[item_id].title
