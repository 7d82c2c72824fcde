"""`python -m ui.screenshot`: the README's screenshots, taken in headless Chromium on the configured service.

The service is the one `concierge chat` and `concierge serve` build (catalog, embedded model and indexes from
the CONCIERGE_* settings), served in this process; every request a page makes outside it is cut off. Writes
`reports/ui-chat.png` (the Gradio chat), `reports/screenshots/gradio-ui.png` (the same UI at /ui of the API)
and `reports/screenshots/demo-widget.png` (the widget on /demo). Needs Playwright (the dev extra) and
Debian's chromium; the tests take their own screenshots into temporary folders.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
REQUEST = "I'd like a funny animated movie"
TURNS = 4  # answer "Doesn't matter" to at most this many questions before giving up on cards


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(app, *, timeout_s: float = 30.0) -> Iterator[str]:
    """Serve an ASGI app with a real uvicorn server in a thread (lifespan included) on a free port."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _local_page(browser, base_url: str, outside: list[str]):
    page = browser.new_page(viewport={"width": 1280, "height": 860})

    def route(request_route) -> None:
        url = request_route.request.url
        if url.startswith((base_url, "data:", "blob:")):
            request_route.continue_()
        else:
            outside.append(url)
            request_route.abort()

    page.route("**/*", route)
    return page


def shoot_gradio(browser, url: str, out: Path, outside: list[str]) -> None:
    """Ask in the Gradio UI, answer "Doesn't matter" until cards appear, then a full-page screenshot."""
    from playwright.sync_api import expect

    page = _local_page(browser, url.split("/ui")[0], outside)
    page.goto(url, wait_until="domcontentloaded", timeout=90_000)
    box = page.locator("#message textarea")
    box.wait_for(timeout=90_000)
    box.fill(REQUEST)
    box.press("Enter")
    settled = "() => !!document.querySelector('#cards .card') || !!document.querySelector('#quick-replies')?.offsetParent"
    for _ in range(TURNS):
        page.wait_for_function(settled, timeout=180_000)
        if page.locator("#cards .card").count():
            break
        page.locator("#quick-replies").get_by_role("button", name="Doesn't matter").click()
        expect(page.locator("#quick-replies")).to_be_hidden(timeout=30_000)
    expect(page.locator("#cards .card").first).to_be_visible(timeout=180_000)
    expect(page.locator("#trace")).to_contain_text(": recommend in", timeout=30_000)
    page.wait_for_timeout(500)  # the last streamed chunk and the cards drawn
    page.screenshot(path=str(out), full_page=True)
    page.close()


def shoot_widget(browser, url: str, out: Path, outside: list[str]) -> None:
    """Open the widget on /demo, ask, answer "Doesn't matter" until cards appear, then a screenshot."""
    from playwright.sync_api import expect

    page = _local_page(browser, url, outside)
    page.goto(url + "/demo", wait_until="domcontentloaded", timeout=60_000)
    page.get_by_role("button", name="Open chat with Shop concierge").click()
    dialog = page.get_by_role("dialog", name="Shop concierge chat")
    box = dialog.get_by_role("textbox", name="Your message")
    box.fill(REQUEST)
    box.press("Enter")
    for _ in range(TURNS):
        expect(dialog.locator(".msg.bot.pending")).to_have_count(0, timeout=180_000)
        if dialog.locator(".card").count():
            break
        dialog.get_by_role("group", name="Quick replies about", exact=False).get_by_role(
            "button", name="Doesn't matter").click()
        page.wait_for_timeout(300)
    expect(dialog.locator(".card").first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(out))
    page.close()


def take_screenshots(reports: Path) -> list[Path]:
    """The three README screenshots of the configured service, written under `reports`."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from playwright.sync_api import sync_playwright

    from conversation.app import build_service
    from conversation.settings import Settings
    from ui.api import create_app
    from ui.gradio_app import build_ui

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Debian's chromium is not installed: run `make system-deps`")
    service = build_service(Settings())
    service.warm_up()
    shots = [reports / "ui-chat.png", reports / "screenshots" / "gradio-ui.png",
             reports / "screenshots" / "demo-widget.png"]
    shots[1].parent.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    chat = build_ui(service).queue()
    chat.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as pw, serving(create_app(service)) as api_url:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            shoot_gradio(browser, chat.local_url.rstrip("/"), shots[0], outside)
            shoot_gradio(browser, api_url + "/ui/", shots[1], outside)
            shoot_widget(browser, api_url, shots[2], outside)
            browser.close()
    finally:
        chat.close()
    if outside:
        raise SystemExit(f"a page tried to reach the network: {outside}")
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ui.screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="Folder to write the PNGs under.")
    for path in take_screenshots(parser.parse_args().reports):
        print(path)


if __name__ == "__main__":
    main()
