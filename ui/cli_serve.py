"""`concierge serve`: the HTTP API (with the widget, demo page and Gradio UI) under uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: CONCIERGE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: CONCIERGE_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Server processes (default: CONCIERGE_WORKERS); >1 needs Redis.")] = None,
) -> None:
    """Serve the HTTP API on the configured catalog, model and session store (docs at /docs)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: works fully offline
    import uvicorn

    from agent.llm import LLMError
    from conversation.app import configured_store
    from conversation.settings import Settings
    from conversation.stores import is_shared
    from retrieval.catalog import CatalogError

    settings = Settings()
    workers = workers or settings.workers
    host, port = host or settings.host, port or settings.port
    if workers > 1:
        if not is_shared(settings.session_store):
            _fail(f"--workers {workers} needs a session store all workers share; set CONCIERGE_SESSION_STORE="
                  f"redis://host:6379/0 (now {settings.session_store!r}, whose sessions and turn locks are per process)")
        try:
            configured_store(settings).get("startup-probe")
        except Exception as exc:  # any connection failure: say which store, then stop
            _fail(f"cannot reach the session store {settings.session_store}: {exc}")
        # Each worker process builds its own app from the same CONCIERGE_* environment.
        uvicorn.run("ui.api:app_from_env", factory=True, host=host, port=port, workers=workers)
        return
    from ui.api import create_app

    try:
        app = create_app(settings=settings)
    except (LLMError, CatalogError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    uvicorn.run(app, host=host, port=port)
