"""Pick and validate the chat model from Settings. Backend modules are imported lazily (heavy deps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from agent.llm import ChatModel, LLMConfigError, ensure_real_calls_allowed


class Settings(Protocol):
    """The model fields of `conversation.settings.Settings` (a Protocol, so the agent never imports upward)."""

    llm_backend: str
    model_path: Path | None
    cache_dir: Path
    llm_threads: int
    llm_context: int
    llm_timeout_s: float
    llm_max_tokens: int
    openai_base_url: str | None
    openai_api_key: Any
    openai_model: str
    openai_max_retries: int

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


def build_chat_model(settings: Settings, *, probe: bool = True) -> ChatModel:
    """The configured chat model, checked now so misconfiguration fails at start with a clear message.

    `probe=True` also makes one GET {base_url}/models for the openai backend (a real network call).
    """
    if settings.llm_backend == "openai":
        key = settings.openai_api_key
        if key is None or not key.get_secret_value().strip():
            raise LLMConfigError(
                "the openai backend needs an API key: set CONCIERGE_OPENAI_API_KEY (local servers such as "
                "Ollama, vLLM or llama.cpp accept any non-empty key, e.g. CONCIERGE_OPENAI_API_KEY=local)"
            )
        if probe:
            check_endpoint(settings)
        from agent.backends.openai import OpenAIChatModel

        return OpenAIChatModel(
            model=settings.openai_model,
            api_key=key,
            base_url=settings.openai_base_url,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.openai_max_retries,
            default_max_tokens=settings.llm_max_tokens,
        )
    from agent.backends.local import LocalChatModel

    return LocalChatModel(
        resolve_model_path(settings),
        n_threads=settings.llm_threads,
        n_ctx=settings.llm_context,
        default_timeout_s=settings.llm_timeout_s,
        default_max_tokens=settings.llm_max_tokens,
    )


def resolve_model_path(settings: Settings) -> Path:
    """The GGUF the local backend runs: `model_path` if set (must be a GGUF), else the bundled model."""
    from agent.backends.model_files import check_gguf_file, ensure_bundled_model

    if settings.model_path is not None:
        path = settings.model_path.expanduser()
        if not path.exists():
            raise LLMConfigError(
                f"CONCIERGE_MODEL_PATH points to {path}, which does not exist; fix the path or unset it "
                "to use the bundled model"
            )
        check_gguf_file(path)
        return path
    return ensure_bundled_model(settings.cache_dir)


def check_endpoint(settings: Settings, *, timeout_s: float = 3.0) -> None:
    """GET {base_url}/models: LLMConfigError within `timeout_s` if the endpoint is down or refuses us."""
    import httpx

    ensure_real_calls_allowed("openai")
    base_url = (settings.openai_base_url or OPENAI_DEFAULT_BASE_URL).rstrip("/")
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    hint = "check CONCIERGE_OPENAI_BASE_URL (it usually ends in /v1) and that the server is running"
    try:
        response = httpx.get(f"{base_url}/models", headers={"Authorization": f"Bearer {key}"}, timeout=timeout_s)
    except httpx.TimeoutException:
        raise LLMConfigError(f"no answer from {base_url} within {timeout_s:.0f}s; {hint}") from None
    except httpx.HTTPError as exc:
        detail = str(exc).replace(key, "****") if key else str(exc)
        raise LLMConfigError(f"cannot reach {base_url} ({type(exc).__name__}: {detail}); {hint}") from None
    if response.status_code in (401, 403):
        raise LLMConfigError(
            f"{base_url} rejected the API key (HTTP {response.status_code}); check CONCIERGE_OPENAI_API_KEY"
        )
    if response.status_code >= 400:
        return  # reachable; some compatible servers do not implement /models
    _check_model_listed(response, settings.openai_model, base_url)


def _check_model_listed(response: object, model: str, base_url: str) -> None:
    try:
        listed = [m["id"] for m in response.json()["data"]]  # type: ignore[attr-defined]
    except (ValueError, KeyError, TypeError):
        return  # not the standard shape; the first chat call will tell
    if listed and model not in listed:
        shown = ", ".join(sorted(listed)[:10]) + (" …" if len(listed) > 10 else "")
        raise LLMConfigError(
            f"model {model!r} is not served at {base_url} (it lists: {shown}); set CONCIERGE_OPENAI_MODEL"
        )
