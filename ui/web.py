"""The web pages served next to the API: the embeddable widget, a demo shop page, and the Gradio UI at /ui."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse

from conversation.service import ConversationService

STATIC = Path(__file__).resolve().parent / "static"


def mount_web(app: FastAPI, service: ConversationService) -> None:
    """Serve /widget.js and /demo, and mount the Gradio UI at /ui, on the API's app."""
    import gradio as gr

    from ui.gradio_app import build_ui

    @app.get("/widget.js", include_in_schema=False)
    def widget_js() -> FileResponse:
        return FileResponse(STATIC / "widget.js", media_type="text/javascript; charset=utf-8")

    @app.get("/demo", include_in_schema=False)
    def demo_page() -> HTMLResponse:
        return HTMLResponse((STATIC / "demo.html").read_text(encoding="utf-8"))

    gr.mount_gradio_app(app, build_ui(service), path="/ui", footer_links=[])
