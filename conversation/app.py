"""Wiring: build the service from settings (the entry points call this once)."""

from __future__ import annotations

from agent.llm import ChatModel
from agent.policy import PolicyConfig
from conversation.parts import build_parts
from conversation.service import ConversationService, ServiceConfig
from conversation.settings import Settings
from conversation.store import SessionStore
from conversation.stores import open_store
from retrieval.catalog import Catalog
from retrieval.embeddings import Embedder
from retrieval.vector import ProgressFactory


def service_config(settings: Settings, *, max_questions: int | None = None) -> ServiceConfig:
    policy = PolicyConfig(
        max_questions=settings.max_questions if max_questions is None else max_questions,
        recommend_below=settings.recommend_below,
        list_size=settings.list_size,
    )
    return ServiceConfig(policy=policy, llm_timeout_s=settings.llm_timeout_s, llm_max_tokens=settings.reply_max_tokens,
                         rerank_prompt=settings.rerank_prompt if settings.rerank_with_llm else None,
                         mode=settings.mode, phrase=settings.phrase_with_llm)


def load_configured_catalog(settings: Settings) -> Catalog:
    from retrieval.loaders import load_catalog

    return load_catalog(settings.catalog)


def load_configured_model(settings: Settings) -> ChatModel | None:
    if not (settings.phrase_with_llm or settings.rerank_with_llm or settings.mode == "llm" or settings.read_with_llm):
        return None
    from agent.backends import build_chat_model

    return build_chat_model(settings)


def build_service(
    settings: Settings,
    *,
    catalog: Catalog | None = None,
    model: ChatModel | None = None,
    max_questions: int | None = None,
    store: SessionStore | None = None,
    embedder: Embedder | None = None,
    progress: ProgressFactory | None = None,
    config: ServiceConfig | None = None,
) -> ConversationService:
    """The whole agent over the configured catalog and chat model (either may be injected): reader,
    linker, session scorer (ranker, item vectors, wish search), tools, CPR policy, planner, re-ranker.

    Sessions stay in memory unless a store is given (the API passes `configured_store(settings)`); `config`
    replaces the one made from the settings (an A/B variant's).
    """
    catalog = catalog if catalog is not None else load_configured_catalog(settings)
    model = model if model is not None else load_configured_model(settings)
    parts = build_parts(settings, catalog, model=model, embedder=embedder, progress=progress)
    config = config or service_config(settings, max_questions=max_questions)
    return ConversationService(catalog, model=model, config=config,
                               store=store, scorer=parts.scorer, tools=parts.tools, linker=parts.linker,
                               reader=parts.reader, graph=parts.graph)


def configured_store(settings: Settings) -> SessionStore:
    """The session store named by `settings.session_store` (SQLite under the data dir by default)."""
    # A turn waiting for its session's lock gives up when the API's deadline would have passed anyway.
    return open_store(settings.session_store, data_dir=settings.data_dir, ttl_s=settings.session_ttl_s,
                      lock_wait_s=settings.turn_deadline_s)
