"""Request and response bodies of the HTTP API (the TurnResult itself is agent.state.TurnResult)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from conversation.service import MAX_MESSAGE_CHARS
from conversation.settings import Settings
from agent.state import Attr, ChatTurn, ConvState


class ApiConfig(BaseModel):
    """Limits and switches of one API app (from Settings, or given directly in tests)."""

    model_config = ConfigDict(frozen=True)

    max_body_bytes: int = 65536
    turn_deadline_s: float = 120.0
    rate_client_per_min: float = 120.0
    rate_client_burst: int = 40
    rate_session_per_min: float = 30.0
    rate_session_burst: int = 8
    cors_origins: list[str] = Field(default_factory=list)
    api_key: SecretStr | None = None
    turn_threads: int = 16  # turns running at once in this process (each is one blocking call)
    mount_web: bool = True  # /widget.js, /demo and Gradio at /ui (ui.web.mount_web)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiConfig:
        names = ("max_body_bytes", "turn_deadline_s", "rate_client_per_min", "rate_client_burst",
                 "rate_session_per_min", "rate_session_burst", "cors_origins", "api_key")
        return cls(**{name: getattr(settings, name) for name in names}, mount_web=settings.web_ui)


class NewSession(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(None, max_length=200, description="Your own id for the user, kept with the session.")


class SessionCreated(BaseModel):
    session_id: str = Field(description="Unguessable id: whoever holds it can continue the conversation.")


class UserMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_MESSAGE_CHARS, description="What the user said.")


class SessionView(BaseModel):
    """A conversation so far: its history and what it has learned."""

    session_id: str
    user_id: str | None
    turn: int
    history: list[ChatTurn]
    accepted: list[Attr]
    rejected: list[Attr]
    last_action: Literal["none", "ask", "recommend"]
    last_shown: list[str]

    @classmethod
    def of(cls, state: ConvState) -> SessionView:
        return cls(**state.model_dump(include=set(cls.model_fields)))


class ItemView(BaseModel):
    id: str
    title: str
    text: str
    attributes: dict[str, list[str]]


class Problem(BaseModel):
    """Every error answer: one readable reason (422 also lists the invalid fields)."""

    detail: str
    errors: list[dict] | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    catalog: str
    items: int
    store: str
