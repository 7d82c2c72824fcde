"""The widget's card links: an allow-listed scheme and the item id escaped in full (a real browser)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import CHROMIUM_ARGS, chromium_path

pytestmark = pytest.mark.browser
WIDGET = Path(__file__).resolve().parents[1] / "ui" / "static" / "widget.js"
SHOP = "https://shop.example"
PAGE = '<!doctype html><title>shop</title><script src="/widget.js" data-autoload="false"></script>'


@pytest.fixture(scope="module")
def page():
    """A shop page at an https origin (served by the browser's router: nothing leaves the machine)."""
    from playwright.sync_api import sync_playwright

    def serve(route):
        url = route.request.url
        if url == f"{SHOP}/":
            return route.fulfill(status=200, content_type="text/html", body=PAGE)
        if url == f"{SHOP}/widget.js":
            return route.fulfill(status=200, content_type="application/javascript", body=WIDGET.read_text("utf-8"))
        return route.abort()

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = chromium.new_page()
        page.route("**/*", serve)
        page.goto(f"{SHOP}/")
        page.wait_for_function("() => window.ConciergeWidget !== undefined")
        yield page
        chromium.close()


def _href(page, template: str, item_id: str):
    return page.evaluate("([t, i]) => window.ConciergeWidget.itemHref(t, i)", [template, item_id])


def test_an_id_with_quotes_and_brackets_is_escaped_in_full(page):
    href = _href(page, f"{SHOP}/products/{{item_id}}", "a'b\"c(d)*e!<x>")
    assert href == f"{SHOP}/products/a%27b%22c%28d%29%2Ae%21%3Cx%3E"


def test_a_relative_template_resolves_against_the_shop(page):
    assert _href(page, "/products/{item_id}?from=chat", "42") == f"{SHOP}/products/42?from=chat"


@pytest.mark.parametrize("template", ["javascript:openItem('{item_id}')", "JavaScript:alert('{item_id}')",
                                      "data:text/html,{item_id}", "vbscript:{item_id}"])
def test_no_link_outside_http(page, template):
    assert _href(page, template, "x');alert(1);('") is None
