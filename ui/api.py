"""The HTTP API: a thin adapter over ConversationService, as JSON or Server-Sent Events, with limits.

Serve it with `concierge serve`, or `uvicorn --factory ui.api:app_from_env` (settings from CONCIERGE_*).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import secrets
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from conversation.service import ConversationService
from conversation.settings import Settings
from agent.state import TurnResult
from conversation.store import SessionBusy, UnknownSession
from ui.api_models import (
    ApiConfig, Health, ItemView, NewSession, Problem, Ready, SessionCreated, SessionView, UserMessage,
)
from ui.limits import BodySizeLimit, TokenBuckets, retry_after

log = logging.getLogger(__name__)
SSE = "text/event-stream"
MAX_ID_CHARS = 128
BUSY = "another turn of this session is still running; retry when it has finished"
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Needed only when the server sets an API key.")


@dataclass
class Runtime:
    """What the endpoints share, kept on app.state (never in module globals)."""

    service: ConversationService
    config: ApiConfig
    executor: ThreadPoolExecutor
    clients: TokenBuckets
    sessions: TokenBuckets
    store_name: str


def _rt(request: Request) -> Runtime:
    return request.app.state.concierge


def _limit(buckets: TokenBuckets, key: str, who: str) -> None:
    wait = buckets.take(key)
    if wait:
        after = retry_after(wait)
        raise HTTPException(429, detail=f"rate limit: too many requests {who}; retry in {after}s",
                            headers={"Retry-After": after})


def client_rate(request: Request) -> None:
    _limit(_rt(request).clients, request.client.host if request.client else "unknown", "from this client")


def api_key(request: Request, key: Annotated[str | None, Depends(_api_key_header)]) -> None:
    expected = _rt(request).config.api_key
    if expected is None or not secrets.compare_digest((key or "").encode(), expected.get_secret_value().encode()):
        raise HTTPException(401, detail="missing or wrong API key (header X-API-Key)")


def _state(rt: Runtime, session_id: str):
    if len(session_id) > MAX_ID_CHARS:
        raise UnknownSession(session_id)
    return rt.service.state(session_id)


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": what}
    for code, what in [(400, "Body is not decodable"), (401, "API key missing or wrong"), (404, "Unknown session or item"),
                       (413, "Body too large"), (422, "Invalid request"), (429, "Rate limited (see Retry-After)")]
}
TURN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {"description": "The TurnResult; with `Accept: text/event-stream`, `token` events then a `result` event.",
          "content": {SSE: {"schema": {"type": "string"}}}},
    409: {"model": Problem, "description": "Another turn of this session is running"},
    504: {"model": Problem, "description": "The turn ran past the deadline"},
}
v1 = APIRouter(prefix="/v1", dependencies=[Depends(client_rate)], responses=ERRORS)


@v1.post("/sessions", status_code=201, response_model=SessionCreated, summary="Start a conversation")
def create_session(request: Request, body: Annotated[NewSession | None, Body()] = None) -> SessionCreated:
    return SessionCreated(session_id=_rt(request).service.start(user_id=body.user_id if body else None))


@v1.post("/sessions/{session_id}/messages", response_model=TurnResult, responses=TURN_RESPONSES,
         summary="Send a message; get the turn's result (JSON, or streamed as Server-Sent Events)")
async def post_message(session_id: str, message: UserMessage, request: Request):
    rt = _rt(request)
    if SSE in request.headers.get("accept", ""):
        await run_in_threadpool(_admit, rt, session_id)  # 404 and 429 before the stream's 200 is sent
        return StreamingResponse(_events(rt, session_id, message.text), media_type=SSE,
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    turn = asyncio.get_running_loop().run_in_executor(rt.executor, partial(_json_turn, rt, session_id, message.text))
    try:
        body = await asyncio.wait_for(turn, rt.config.turn_deadline_s)
    except TimeoutError:
        raise HTTPException(504, detail=_late(rt)) from None
    return Response(body, media_type="application/json")


def _admit(rt: Runtime, session_id: str) -> None:
    """A turn may start: the session exists (404), then it is within its rate (429)."""
    _state(rt, session_id)
    _limit(rt.sessions, session_id, "in this session")


def _json_turn(rt: Runtime, session_id: str, text: str) -> bytes:
    """A whole JSON turn in one worker thread (one hop from the event loop), serialised there by pydantic."""
    _admit(rt, session_id)
    return rt.service.respond(session_id, text).model_dump_json().encode()


@v1.get("/sessions/{session_id}", response_model=SessionView, summary="A conversation's history and what it learned")
def get_session(session_id: str, request: Request) -> SessionView:
    return SessionView.of(_state(_rt(request), session_id))


@v1.delete("/sessions/{session_id}", status_code=204, response_class=Response, summary="Forget a conversation")
def delete_session(session_id: str, request: Request) -> Response:
    if len(session_id) > MAX_ID_CHARS or not _rt(request).service.end(session_id):
        raise UnknownSession(session_id)
    return Response(status_code=204)


@v1.get("/items/{item_id:path}", response_model=ItemView, summary="One catalog item")
def get_item(item_id: str, request: Request) -> ItemView:
    item = _rt(request).service.catalog.items.get(item_id)
    if item is None:
        raise HTTPException(404, detail="unknown item")
    return ItemView(id=item.id, title=item.title, text=item.text, attributes=item.attributes)


probes = APIRouter()


@probes.get("/healthz", response_model=Health, summary="The process is up")
def healthz() -> Health:
    return Health()


@probes.get("/readyz", response_model=Ready, responses={503: {"model": Problem}}, summary="Catalog loaded, store reachable")
def readyz(request: Request) -> Ready:
    rt = _rt(request)
    try:
        rt.service.store.get("readyz-probe")
    except Exception as exc:  # any store failure means "not ready"; the reason goes to the log and the answer
        log.warning("readiness: session store unreachable: %r", exc)
        raise HTTPException(503, detail=f"session store unreachable: {type(exc).__name__}") from exc
    return Ready(catalog=rt.service.catalog.name, items=len(rt.service.catalog), store=rt.store_name)


async def _events(rt: Runtime, session_id: str, text: str) -> AsyncIterator[str]:
    """Run the turn in a worker thread; relay its text chunks as `token` events, then `result` or `error`."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def put(kind: str, value: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def work() -> None:
        try:
            put("result", rt.service.respond(session_id, text, on_token=partial(put, "token")))
        except Exception as exc:  # handed to the event loop, which reports it as an `error` event
            put("error", exc)

    pending = loop.run_in_executor(rt.executor, work)  # keeps running if the client goes away
    ends_at = loop.time() + rt.config.turn_deadline_s
    while True:
        try:
            kind, value = await asyncio.wait_for(queue.get(), max(0.0, ends_at - loop.time()))
        except TimeoutError:
            yield _event("error", {"detail": _late(rt)})
            return
        if kind == "token":
            yield _event("token", {"text": value})
        elif kind == "result":
            yield f"event: result\ndata: {value.model_dump_json()}\n\n"
            break
        else:
            yield _event("error", {"detail": _reason(value)})
            break
    await pending


def _event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _late(rt: Runtime) -> str:
    return f"the turn ran past the {rt.config.turn_deadline_s:g}s deadline; it may still finish (see GET /v1/sessions/{{id}})"


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnknownSession):
        return "unknown session"
    if isinstance(exc, SessionBusy):
        return BUSY
    log.error("turn failed", exc_info=exc)
    return "internal error: the turn failed"


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(UnknownSession)
    async def unknown_session(_request: Request, _exc: UnknownSession) -> JSONResponse:
        return JSONResponse({"detail": "unknown session"}, status_code=404)

    @app.exception_handler(SessionBusy)
    async def busy(_request: Request, _exc: SessionBusy) -> JSONResponse:
        return JSONResponse({"detail": BUSY}, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors(), exclude={"input", "ctx", "url"})
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", []))
        return JSONResponse({"detail": f"{where}: {first.get('msg')}" if where else first.get("msg"), "errors": errors},
                            status_code=422)

    @app.exception_handler(Exception)
    async def crashed(_request: Request, _exc: Exception) -> JSONResponse:
        # The client gets a reason, never a traceback; Starlette re-raises after this answer, so the server logs it.
        return JSONResponse({"detail": "internal error"}, status_code=500)


def create_app(
    service: ConversationService | None = None,
    settings: Settings | None = None,
    *,
    api_config: ApiConfig | None = None,
) -> FastAPI:
    """The API app over `service` (built from `settings` when not given), with the web pages unless turned off."""
    owned = service is None
    if service is None:
        from conversation.app import build_service, configured_store

        settings = settings or Settings()
        service = build_service(settings, store=configured_store(settings))
        service.warm_up()  # the first person should not wait for the model to load
    config = api_config or (ApiConfig.from_settings(settings) if settings is not None else ApiConfig())
    executor = ThreadPoolExecutor(max_workers=config.turn_threads, thread_name_prefix="turn")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        executor.shutdown(wait=False, cancel_futures=True)
        if owned and hasattr(service.store, "close"):
            service.store.close()

    app = FastAPI(title="Concierge API", version="1", lifespan=lifespan,
                  description="Chat with a conversational recommender: start a session, send messages, read results.")
    app.state.concierge = Runtime(
        service=service, config=config, executor=executor,
        clients=TokenBuckets(per_min=config.rate_client_per_min, burst=config.rate_client_burst),
        sessions=TokenBuckets(per_min=config.rate_session_per_min, burst=config.rate_session_burst),
        store_name=type(service.store).__name__,
    )
    _install_handlers(app)
    # The key check (and its security scheme in the OpenAPI spec) only when a key is configured.
    app.include_router(v1, dependencies=[Depends(api_key)] if config.api_key is not None else [])
    app.include_router(probes)
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    if config.cors_origins:  # added last, so it is outermost and error answers carry CORS headers too
        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Content-Type", "Accept", "X-API-Key"], expose_headers=["Retry-After"],
                           max_age=600)
    if config.mount_web and importlib.util.find_spec("ui.web") is not None:
        from ui import web

        if hasattr(web, "mount_web"):
            web.mount_web(app, service)
    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory (`--factory ui.api:app_from_env`): settings from CONCIERGE_* and .env."""
    return create_app(settings=Settings())
