"""The Gradio chat UI, really served by `concierge chat`, used in headless Chromium; screenshot to reports/."""

from pathlib import Path

import pytest

from tests.browser import CHROMIUM_ARGS, chromium_path, free_port, running_server

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.browser
@pytest.mark.local_llm
def test_chat_ui_names_real_movies(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    with running_server(["chat", "--port", str(port)], port=port, log=tmp_path / "server.log") as url:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            outside: list[str] = []
            page.route("**/*", lambda route: _local_only(route, url, outside))
            page.goto(url, wait_until="domcontentloaded", timeout=90_000)
            box = page.locator("#message textarea")
            box.wait_for(timeout=90_000)
            box.fill("I'd like a funny animated movie")
            box.press("Enter")
            chat, quick = page.locator("#chat"), page.locator("#quick-replies")
            for _ in range(4):  # answer "Doesn't matter" until it recommends
                page.wait_for_function(
                    "() => document.querySelector('#chat').innerText.includes('Toy Story')"
                    " || !!document.querySelector('#quick-replies')?.offsetParent",
                    timeout=120_000,
                )
                if "Toy Story" in chat.inner_text():
                    break
                quick.get_by_role("button", name="Doesn't matter").click()
                expect(quick).to_be_hidden(timeout=30_000)
            expect(chat).to_contain_text("Toy Story", timeout=1_000)
            page.wait_for_timeout(500)
            (REPO / "reports").mkdir(exist_ok=True)
            page.screenshot(path=str(REPO / "reports" / "ui-chat.png"), full_page=True)
            browser.close()
    assert not outside, f"the UI tried to reach the network: {outside}"


def _local_only(route, base_url: str, outside: list[str]) -> None:
    """CI machines reach only package registries: the page must work with everything else cut off."""
    request_url = route.request.url
    if request_url.startswith((base_url, "data:", "blob:")):
        route.continue_()
    else:
        outside.append(request_url)
        route.abort()
