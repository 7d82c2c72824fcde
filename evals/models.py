"""The one model-and-cache factory of the lab: chat models by backend spec, wrapped in the response cache,
and one ConversationService per catalog."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.backends import build_chat_model
from agent.llm import ChatModel
from retrieval.loaders import load_catalog

NO_MODEL = ("none", "template")
ModelFactory = Callable[..., ChatModel]
CatalogLoader = Callable[[Path], Any]


def cached_model(settings: Any, cache: Path | Any | None, *, model_factory: ModelFactory = build_chat_model) -> ChatModel:
    """The configured chat model, behind the response cache (a path or an open ResponseCache) when one is given."""
    model = model_factory(settings)
    if cache is None:
        return model
    from evals.llm_cache import CachedChatModel, ResponseCache

    return CachedChatModel(model, cache if isinstance(cache, ResponseCache) else ResponseCache(cache))


class ModelPool:
    """Chat models by backend spec ("local", "openai", "openai:MODEL"), each built once and optionally cached."""

    def __init__(self, settings: Any, cache: Any | None, *, model_factory: ModelFactory = build_chat_model,
                 status: Callable[[str], Any] | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self.model_factory = model_factory
        self.status = status
        self._models: dict[str, Any] = {}

    def get(self, spec: str) -> Any | None:
        """The model for a spec; None for "none"/"template"."""
        if spec in NO_MODEL:
            return None
        if spec not in self._models:
            backend, _sep, name = spec.partition(":")
            if backend not in ("local", "openai"):
                raise ValueError(f"unknown backend {spec!r}: use local, openai, openai:MODEL or none")
            update: dict[str, Any] = {"llm_backend": backend}
            if name:
                update["openai_model"] = name
            settings = self.settings.model_copy(update=update)
            if self.status is None:
                self._models[spec] = cached_model(settings, self.cache, model_factory=self.model_factory)
            else:
                with self.status(f"loading the {spec} chat model"):
                    self._models[spec] = cached_model(settings, self.cache, model_factory=self.model_factory)
        return self._models[spec]


class ServicePool:
    """One ConversationService per catalog path (thread-safe; the service is shared by all sessions)."""

    def __init__(self, settings: Any, model: Any | None, *, catalog_override: Path | None, repo: Path,
                 catalog_loader: CatalogLoader = load_catalog) -> None:
        self.settings = settings
        self.model = model
        self.catalog_override = catalog_override
        self.repo = repo
        self.catalog_loader = catalog_loader
        self._services: dict[Path, Any] = {}
        self._lock = threading.Lock()

    def catalog_path(self, case: Any) -> Path:
        if self.catalog_override is not None:
            return self.catalog_override
        path = Path(case.catalog)
        return path if path.is_absolute() else (self.repo / path).resolve()

    def __call__(self, case: Any) -> Any:
        from conversation.app import build_service

        path = self.catalog_path(case)
        with self._lock:
            if path not in self._services:
                self._services[path] = build_service(self.settings, catalog=self.catalog_loader(path), model=self.model)
            return self._services[path]
