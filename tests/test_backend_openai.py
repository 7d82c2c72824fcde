"""OpenAIChatModel and the endpoint probe against a real HTTP server on 127.0.0.1 imitating the API."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import agent.llm
from agent.backends import build_chat_model, check_endpoint
from agent.backends.openai import OpenAIChatModel
from agent.llm import (
    LLMConfigError,
    LLMError,
    LLMUnavailable,
    Message,
    RealCallsForbidden,
    ToolCall,
    ToolSpec,
)
from conversation.settings import Settings

KEY = "sk-test-SECRET-0123456789abcdef"
SEARCH = ToolSpec(
    name="search_movies",
    description="Search the catalog.",
    parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)


def completion(content: str | None = "hi", *, tool_calls: list[dict] | None = None, finish: str = "stop") -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-test",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


def chunk(delta: dict | None, *, finish: str | None = None, usage: dict | None = None) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-test", "choices": choices,
            "usage": usage}


class FakeOpenAI:
    """Scripted replies: (status, json body) or ("stream", [chunks]); records every request."""

    def __init__(self) -> None:
        self.script: deque[tuple[Any, Any]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.models = ["gpt-test"]
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {KEY}":
                    return self._send(401, {"error": {"message": "bad key"}})
                self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                status, payload = fake.script.popleft()
                if status == "stream":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for item in payload:
                        self.wfile.write(f"data: {json.dumps(item)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                if callable(payload):
                    payload = payload(self.headers)
                self._send(status, payload)

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    monkeypatch.setattr(agent.llm, "ALLOW_REAL_CALLS", True)  # the endpoint is local and fake
    fake = FakeOpenAI()
    yield fake
    fake.close()


def model_for(server: FakeOpenAI, **kwargs: Any) -> OpenAIChatModel:
    options = {"max_retries": 2, "timeout_s": 5.0, "retry_wait_s": 0.01, **kwargs}
    return OpenAIChatModel(model="gpt-test", api_key=_secret(KEY), base_url=server.base_url, **options)


def _secret(value: str):
    from pydantic import SecretStr

    return SecretStr(value)


def settings_for(base_url: str, **kwargs: Any) -> Settings:
    options = {"openai_api_key": KEY, "openai_model": "gpt-test", **kwargs}
    return Settings(_env_file=None, llm_backend="openai", openai_base_url=base_url, **options)


def test_plain_reply_with_usage(server):
    server.script.append((200, completion("Hello there")))
    reply = model_for(server).chat([Message(role="user", content="hi")], max_tokens=20)
    assert reply.text == "Hello there" and reply.tool_calls == []
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (11, 3)
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == f"Bearer {KEY}"
    assert sent["body"]["model"] == "gpt-test" and sent["body"]["max_tokens"] == 20
    assert sent["body"]["messages"] == [{"role": "user", "content": "hi"}]


def test_tool_calls_round_trip(server):
    call = {"id": "call_9", "type": "function", "function": {"name": "search_movies", "arguments": '{"query": "space"}'}}
    unknown = {"id": "call_x", "type": "function", "function": {"name": "rm_rf", "arguments": "{}"}}
    server.script.append((200, completion(None, tool_calls=[call, unknown], finish="tool_calls")))
    history = [
        Message(role="user", content="space films"),
        Message(role="assistant", tool_calls=[ToolCall(id="call_1", name="search_movies", arguments={"query": "x"})]),
        Message(role="tool", tool_call_id="call_1", name="search_movies", content="no results"),
    ]
    reply = model_for(server).chat(history, tools=[SEARCH], tool_choice="search_movies")
    assert reply.tool_calls == [ToolCall(id="call_9", name="search_movies", arguments={"query": "space"})]
    assert reply.finish_reason == "tool_calls" and reply.text == ""
    body = server.requests[0]["body"]
    assert body["tools"] == [{"type": "function", "function": SEARCH.model_dump()}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "search_movies"}}
    assistant, tool = body["messages"][1], body["messages"][2]
    assert assistant["tool_calls"][0]["function"] == {"name": "search_movies", "arguments": '{"query": "x"}'}
    assert tool == {"role": "tool", "content": "no results", "tool_call_id": "call_1"}


def test_json_schema_is_passed_as_response_format(server):
    schema = {"type": "object", "properties": {"genre": {"enum": ["comedy", "horror"]}}}
    server.script.append((200, completion('{"genre": "horror"}')))
    reply = model_for(server).chat([Message(role="user", content="scary")], json_schema=schema)
    assert json.loads(reply.text) == {"genre": "horror"}
    assert server.requests[0]["body"]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": False},
    }


def test_streaming_text_and_tool_call_deltas(server):
    usage = {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}
    server.script.append(("stream", [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo "}),
        chunk({"content": "world"}, finish="stop"),
        chunk(None, usage=usage),
    ]))
    tokens: list[str] = []
    reply = model_for(server).chat([Message(role="user", content="hi")], on_token=tokens.append)
    assert tokens == ["Hel", "lo ", "world"] and reply.text == "Hello world"
    assert reply.usage.completion_tokens == 4 and reply.first_token_s is not None
    assert server.requests[0]["body"]["stream"] is True

    fn = {"index": 0, "id": "call_5", "type": "function", "function": {"name": "search_movies", "arguments": ""}}
    server.script.append(("stream", [
        chunk({"role": "assistant", "tool_calls": [fn]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"que'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ry": "moon"}'}}]}, finish="tool_calls"),
    ]))
    reply = model_for(server).chat([Message(role="user", content="moon")], tools=[SEARCH], on_token=tokens.append)
    assert reply.tool_calls == [ToolCall(id="call_5", name="search_movies", arguments={"query": "moon"})]
    assert reply.finish_reason == "tool_calls"


def test_retries_a_503_then_succeeds(server):
    server.script.extend([(503, {"error": {"message": "overloaded"}}), (200, completion("ok"))])
    assert model_for(server).chat([Message(role="user", content="hi")]).text == "ok"
    assert len(server.requests) == 2


def test_gives_up_after_bounded_retries(server):
    server.script.extend([(500, {"error": {"message": "boom"}})] * 3)
    with pytest.raises(LLMUnavailable, match="HTTP 500"):
        model_for(server, max_retries=2).chat([Message(role="user", content="hi")])
    assert len(server.requests) == 3


def test_does_not_retry_a_400(server):
    server.script.append((400, {"error": {"message": "bad request: max_tokens too large"}}))
    with pytest.raises(LLMError, match="HTTP 400") as info:
        model_for(server).chat([Message(role="user", content="hi")])
    assert not isinstance(info.value, LLMUnavailable)
    assert len(server.requests) == 1


def test_switches_to_max_completion_tokens_when_the_model_asks(server):
    message = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
    server.script.extend([(400, {"error": {"message": message}}), (200, completion("ok")), (200, completion("again"))])
    model = model_for(server)
    assert model.chat([Message(role="user", content="hi")], max_tokens=9).text == "ok"
    assert model.chat([Message(role="user", content="hi")], max_tokens=9).text == "again"
    sent = [r["body"] for r in server.requests]
    assert sent[0]["max_tokens"] == 9 and "max_tokens" not in sent[1] and sent[1]["max_completion_tokens"] == 9
    assert sent[2]["max_completion_tokens"] == 9


def test_api_key_never_in_errors_or_logs(server, caplog):
    def echo(headers):  # a careless server that quotes the credentials back
        return {"error": {"message": f"rejected {headers.get('Authorization')}"}}

    caplog.set_level(logging.DEBUG)
    server.script.extend([(500, echo), (500, echo), (400, echo)])
    for _ in range(2):
        try:
            model_for(server, max_retries=1).chat([Message(role="user", content="hi")])
        except LLMError as exc:
            text = "".join(traceback.format_exception(exc)) + repr(exc)
            assert "rejected" in text and "****" in text
            assert KEY not in text
    assert KEY not in caplog.text
    assert len(server.requests) == 3


def test_unreachable_base_url_fails_fast_at_start():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    agent.llm.ALLOW_REAL_CALLS = True  # restored by the autouse fixture in conftest
    started = time.monotonic()
    with pytest.raises(LLMConfigError, match="cannot reach .*CONCIERGE_OPENAI_BASE_URL"):
        build_chat_model(settings_for(f"http://127.0.0.1:{port}/v1"))
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"took {elapsed:.1f}s"  # connection refused is instant; slack for slow CI


def test_silent_endpoint_times_out_into_a_config_error():
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        agent.llm.ALLOW_REAL_CALLS = True
        started = time.monotonic()
        with pytest.raises(LLMConfigError, match="no answer"):
            check_endpoint(settings_for(f"http://127.0.0.1:{silent.getsockname()[1]}/v1"), timeout_s=0.5)
        assert time.monotonic() - started < 5


def test_probe_checks_key_and_model(server):
    model = build_chat_model(settings_for(server.base_url))
    assert isinstance(model, OpenAIChatModel) and model.name == "openai:gpt-test"
    with pytest.raises(LLMConfigError, match="rejected the API key"):
        build_chat_model(settings_for(server.base_url, openai_api_key="wrong"))
    with pytest.raises(LLMConfigError, match="'gpt-9' is not served .*gpt-test"):
        build_chat_model(settings_for(server.base_url, openai_model="gpt-9"))


def test_missing_key_names_the_variable():
    with pytest.raises(LLMConfigError) as info:
        build_chat_model(settings_for("http://127.0.0.1:9/v1", openai_api_key=None), probe=False)
    assert "CONCIERGE_OPENAI_API_KEY" in str(info.value) and "Ollama" in str(info.value)
    with pytest.raises(LLMConfigError, match="CONCIERGE_OPENAI_API_KEY"):
        build_chat_model(settings_for("http://127.0.0.1:9/v1", openai_api_key="  "), probe=False)


def test_real_calls_forbidden_by_default_in_tests():
    model = OpenAIChatModel(model="gpt-test", api_key=_secret(KEY), base_url="http://127.0.0.1:9/v1")
    with pytest.raises(RealCallsForbidden):
        model.chat([Message(role="user", content="hi")])
    with pytest.raises(RealCallsForbidden):
        check_endpoint(settings_for("http://127.0.0.1:9/v1"))
