"""The uvicorn factory `concierge bench serve` runs in its own process: the real API with a delayed chat model."""

from __future__ import annotations

import os

from evals.serve_server import DELAY_ENV, THREADS_ENV, BenchInstruments, DelayedChatModel
from ui.api import create_app
from ui.api_models import ApiConfig


def bench_app():
    """The uvicorn factory the benchmark's server runs: the real API over Settings, with DelayedChatModel.

    The service is pinned to exactly one LLM call per turn (graph mode, LLM phrasing, no LLM re-ranking, no
    LLM reading: the scripted model's delay stands for the one phrasing call).
    """
    from conversation.app import build_service, configured_store
    from conversation.settings import Settings

    settings = Settings(phrase_with_llm=True, rerank_with_llm=False, read_with_llm=False, mode="graph", web_ui=False)
    model = DelayedChatModel(delay_s=float(os.environ[DELAY_ENV]))
    service = build_service(settings, model=model, store=configured_store(settings))
    config = ApiConfig.from_settings(settings).model_copy(update={"turn_threads": int(os.environ[THREADS_ENV])})
    app = create_app(service, api_config=config)
    app.add_middleware(BenchInstruments)  # outermost: times everything the app does
    return app
