"""The web pages served next to the API: the embeddable widget, a demo shop page, and the Gradio UI at /ui."""

from __future__ import annotations

import html
from pathlib import Path
from string import Template

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse

from conversation.service import ConversationService
from retrieval.catalog import Catalog

STATIC = Path(__file__).resolve().parent / "static"
SHELF_SIZE = 8


def mount_web(app: FastAPI, service: ConversationService) -> None:
    """Serve /widget.js and /demo, and mount the Gradio UI at /ui, on the API's app."""
    import gradio as gr

    from ui.gradio_app import build_ui

    page = demo_page(service.catalog)

    @app.get("/widget.js", include_in_schema=False)
    def widget_js() -> FileResponse:
        # Short cache: shops embed this URL directly, so a new release should reach them within minutes.
        return FileResponse(STATIC / "widget.js", media_type="text/javascript; charset=utf-8",
                            headers={"Cache-Control": "public, max-age=300"})

    @app.get("/demo", include_in_schema=False)
    def demo() -> HTMLResponse:
        return HTMLResponse(page)

    gr.mount_gradio_app(app, build_ui(service), path="/ui", footer_links=[], run_history=False)


def demo_page(catalog: Catalog) -> str:
    """A plain shop page with a few catalog items on the shelf and the widget's one script tag."""
    shelf = "\n".join(
        f'    <li><div class="cover" aria-hidden="true"></div><strong>{html.escape(item.title)}</strong><br>'
        f"<small>{html.escape(', '.join(item.attributes.get('genre', [])[:3]))}</small></li>"
        for item in list(catalog.items.values())[:SHELF_SIZE]
    )
    template = Template((STATIC / "demo.html").read_text(encoding="utf-8"))
    return template.substitute(catalog=html.escape(catalog.name), count=f"{len(catalog):,}", products=shelf)
