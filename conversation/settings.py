"""One settings object, loaded once in the entry point and passed down (env prefix CONCIERGE_)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_CATALOG = Path("data/movielens-latest-small")


def _default_cache() -> Path:
    return Path.home() / ".cache" / "concierge"


class Settings(BaseSettings):
    """Effective configuration. Every field can be set as CONCIERGE_<FIELD> or in a .env file."""

    model_config = SettingsConfigDict(env_prefix="CONCIERGE_", env_file=".env", extra="ignore")

    # Which chat model answers.
    llm_backend: Literal["local", "openai"] = Field(
        "local", description="'local' runs the embedded GGUF in-process; 'openai' uses any OpenAI-compatible endpoint."
    )
    model_path: Path | None = Field(
        None, description="A GGUF file to run instead of the bundled Qwen2.5-Coder-1.5B-Instruct Q4_K_M."
    )
    cache_dir: Path = Field(default_factory=_default_cache, description="Where the assembled model file is kept.")
    llm_threads: int = Field(2, ge=1, le=256, description="CPU threads for llama.cpp.")
    llm_context: int = Field(4096, ge=512, le=131072, description="Context window (tokens) for the local model.")
    llm_timeout_s: float = Field(30.0, gt=0, description="Deadline for one LLM call; past it the turn degrades.")
    llm_max_tokens: int = Field(160, ge=8, le=4096, description="Default cap on generated tokens per call.")
    reply_max_tokens: int = Field(40, ge=8, le=4096, description=(
        "Cap on the tokens of the reply's lead sentence (one short sentence; at most llm_max_tokens)."))

    openai_base_url: str | None = Field(None, description="Base URL of an OpenAI-compatible API (None: api.openai.com).")
    openai_api_key: SecretStr | None = Field(None, description="API key for the OpenAI-compatible endpoint.")
    openai_model: str = Field("gpt-4o-mini", description="Model name at the OpenAI-compatible endpoint.")
    openai_max_retries: int = Field(3, ge=0, le=10, description="Retries on transient errors (429, 5xx, timeouts).")

    embedding_model_path: Path | None = Field(
        None, description="A sentence-transformers model folder (default: the bundled all-MiniLM-L6-v2)."
    )

    catalog: Path = Field(DEFAULT_CATALOG, description="Catalog to recommend from (a folder or a JSONL/CSV file).")
    data_dir: Path = Field(Path(".concierge"), description="Indexes and caches built from the catalog.")

    max_questions: int = Field(1, ge=0, le=14, description=(
        "Questions asked before recommending anyway. 1: on 30 paired LLM-simulated sessions it raised success "
        "from 0.57 (3 questions) to 0.77 and cut turns from 3.9 to 2.7 (reports/sim-movielens-q1.md)."))
    recommend_below: int = Field(12, ge=1, description="Recommend once at most this many candidates remain.")
    list_size: int = Field(5, ge=1, le=10, description="Items per recommendation.")
    phrase_with_llm: bool = Field(True, description="Let the LLM phrase replies (template text if False).")
    mode: Literal["graph", "llm"] = Field(
        "graph", description="graph: CPR path reasoning decides each turn; llm: the LLM planner picks among CPR's legal actions."
    )
    rerank_with_llm: bool = Field(
        False, description="Let the LLM re-rank and explain recommendations (fused with the ranker's order)."
    )
    rerank_prompt: str = Field("rerank.v1", description="Re-rank prompt: rerank.v1 (zero-shot) or rerank_fewshot.v1.")

    # The parts of the product turn (all on by default; each can be turned off for an ablation).
    link_entities: bool = Field(True, description="Link titles and people named in free text (liked, disliked, seen).")
    collaborative: bool = Field(
        True, description="Rank with the EASE item-item model, the session's liked items as history.")
    content_similarity: bool = Field(
        True, description="Rank items close in meaning (item embeddings) to the liked ones higher.")
    search_wishes: bool = Field(
        True, description="Send free-text wishes to hybrid search (keyword + vector); its hits can be recommended.")
    context_history: bool = Field(
        True, description="Let items the person has seen, and items the other side of an observed dialog named, "
                          "join the ranker's history at half weight.")
    recent_popularity: bool = Field(
        True, description="Use the popularity of the interaction log's last 3 years as the prior (else all of it).")
    read_with_llm: bool = Field(
        True, description="Let the LLM read what the matcher cannot: other languages (translated) and free text.")

    host: str = Field("127.0.0.1", description="Address the UI/API listens on.")
    port: int = Field(7860, ge=1, le=65535, description="Port the UI/API listens on.")

    # The HTTP API (`concierge serve`).
    workers: int = Field(1, ge=1, le=64, description="Server processes for `concierge serve` (>1 needs a redis:// store).")
    session_store: str = Field(
        "sqlite", description="Where API sessions live: 'sqlite' (<data_dir>/sessions.sqlite3), 'sqlite:///<path>', "
        "'redis://host:port/db' (several workers), or 'memory'."
    )
    session_ttl_s: int = Field(7 * 24 * 3600, ge=60, description="Idle time after which an API session is forgotten.")
    api_key: SecretStr | None = Field(None, description="If set, /v1 requests need this value in the X-API-Key header.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins (comma-separated) whose pages may call the API, e.g. the shop embedding the widget."
    )
    max_body_bytes: int = Field(65536, ge=1024, description="Largest request body the API accepts (413 above).")
    turn_deadline_s: float = Field(120.0, gt=0, description="Longest an API turn may take (504, or an SSE error event).")
    rate_client_per_min: float = Field(120.0, gt=0, description="Requests per minute one client address may make to /v1.")
    rate_client_burst: int = Field(40, ge=1, description="Requests one client address may make at once before the rate applies.")
    rate_session_per_min: float = Field(30.0, gt=0, description="Messages per minute one session may send.")
    rate_session_burst: int = Field(8, ge=1, description="Messages one session may send at once before the rate applies.")
    web_ui: bool = Field(True, description="Serve /widget.js, /demo and the Gradio UI at /ui next to the API.")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.reply_max_tokens > self.llm_max_tokens:
            raise ValueError(f"reply_max_tokens ({self.reply_max_tokens}, CONCIERGE_REPLY_MAX_TOKENS) is above "
                             f"llm_max_tokens ({self.llm_max_tokens}, CONCIERGE_LLM_MAX_TOKENS); lower the first "
                             "or raise the second")
        return self

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        return [o.strip() for o in value.split(",") if o.strip()] if isinstance(value, str) else value

    def masked(self) -> dict[str, Any]:
        """The settings as plain data, secrets masked."""
        data = self.model_dump(mode="json")
        for name, value in data.items():
            if isinstance(getattr(self, name), SecretStr) and value is not None:
                data[name] = "****"
        return data
