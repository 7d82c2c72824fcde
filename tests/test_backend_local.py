"""The embedded llama.cpp backend: parser and config tests without a model, a few real calls with it."""

from __future__ import annotations

import json

import pytest

from agent.backends import build_chat_model
from agent.backends.local import LocalChatModel, _StreamGate
from agent.backends.tool_calls import call_schema, loads_lenient, parse_tool_calls
from agent.llm import LLMConfigError, LLMTimeout, Message, ToolSpec
from conversation.settings import Settings

SEARCH = ToolSpec(
    name="search_movies",
    description="Search the movie catalog by free-text query.",
    parameters={
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "what to look for"},
            "max_year": {"type": "integer", "description": "latest release year"},
        },
        "required": ["query"],
    },
)
RATE = ToolSpec(name="rate", description="Rate a movie.", parameters={"type": "object", "properties": {}})


# ---- tool-call parser on hand-written model outputs (no model needed) ----

def test_parses_one_qwen_tool_call_and_keeps_surrounding_text():
    text = 'Let me look.\n<tool_call>\n{"name": "search_movies", "arguments": {"query": "space"}}\n</tool_call>'
    rest, calls = parse_tool_calls(text, [SEARCH])
    assert rest == "Let me look."
    assert [(c.name, c.arguments) for c in calls] == [("search_movies", {"query": "space"})]
    assert calls[0].id.startswith("call_")


def test_parses_several_calls_missing_close_tag_and_trailing_text():
    text = (
        '<tool_call>{"name": "search_movies", "arguments": {"query": "a"}}</tool_call>\n'
        '<tool_call>{"name": "rate", "arguments": {}} and then some chatter\n'
        '<tool_call>\n{"name": "search_movies", "arguments": {"query": "b"}}'
    )
    _, calls = parse_tool_calls(text, [SEARCH, RATE])
    assert [(c.name, c.arguments) for c in calls] == [
        ("search_movies", {"query": "a"}),
        ("rate", {}),
        ("search_movies", {"query": "b"}),
    ]
    assert len({c.id for c in calls}) == 3


def test_parses_single_quotes_string_arguments_and_fences():
    text = "<tool_call>{'name': 'search_movies', 'arguments': {'query': 'noir', 'max_year': 1960}}</tool_call>"
    assert parse_tool_calls(text, [SEARCH])[1][0].arguments == {"query": "noir", "max_year": 1960}
    text = '<tool_call>{"name": "search_movies", "arguments": "{\\"query\\": \\"jazz\\"}"}</tool_call>'
    assert parse_tool_calls(text, [SEARCH])[1][0].arguments == {"query": "jazz"}
    text = '<tool_call>\n```json\n{"name": "search_movies", "arguments": {"query": "x", "flag": true}}\n```\n</tool_call>'
    assert parse_tool_calls(text, [SEARCH])[1][0].arguments == {"query": "x", "flag": True}
    text = '<tool_call>{"name": "search_movies", "arguments": {"query": "cut off"}</tool_call>'
    assert parse_tool_calls(text, [SEARCH])[1][0].arguments == {"query": "cut off"}


def test_drops_unknown_tools_and_garbage_but_keeps_plain_text():
    text = '<tool_call>{"name": "delete_all", "arguments": {}}</tool_call><tool_call>not json</tool_call>'
    assert parse_tool_calls(text, [SEARCH]) == ("", [])
    assert parse_tool_calls("Sure, here are three films.", [SEARCH]) == ("Sure, here are three films.", [])
    assert parse_tool_calls('{"genre": "comedy"}', [SEARCH]) == ('{"genre": "comedy"}', [])


def test_accepts_a_bare_call_without_tags():
    rest, calls = parse_tool_calls('{"name": "search_movies", "arguments": {"query": "heist"}}', [SEARCH])
    assert rest == "" and calls[0].arguments == {"query": "heist"}


def test_loads_lenient():
    assert loads_lenient('noise {"a": [1, 2]} trailing') == {"a": [1, 2]}
    assert loads_lenient("{'a': None, 'b': 'it\\'s'}") == {"a": None, "b": "it's"}
    assert loads_lenient("no json here") is None


def test_stream_gate_never_streams_tool_call_markup():
    out: list[str] = []
    gate = _StreamGate(out.append, tool_mode=True)
    text = ""
    for piece in ["Hel", "lo <", "tool", "_call>", '{"name"']:
        text += piece
        gate.feed(text)
    gate.finish("")  # the reply was a tool call
    assert "".join(out) == "Hello "

    out.clear()
    gate = _StreamGate(out.append, tool_mode=True)
    gate.feed('```json\n{"na')  # looks like a bare call: held back
    assert out == []
    gate.finish('```json\n{"name": 1}\n```')  # ...but it was not one: flushed at the end
    assert "".join(out) == '```json\n{"name": 1}\n```'


def test_stream_gate_holds_back_partial_stop_strings():
    out: list[str] = []
    gate = _StreamGate(out.append, tool_mode=False)
    gate.feed("a <")
    assert out == ["a "]
    gate.feed("a <b")
    gate.finish("a <b")
    assert "".join(out) == "a <b"


def test_accepts_a_bare_call_in_a_code_fence():
    text = '```json\n{\n  "name": "search_movies",\n  "arguments": {"query": "space", "max_year": 1990}\n}\n```'
    rest, calls = parse_tool_calls(text, [SEARCH])
    assert rest == "" and calls[0].arguments == {"query": "space", "max_year": 1990}


def test_forced_call_schema_puts_name_first_and_inlines_refs():
    tool = ToolSpec(
        name="pick",
        description="Pick.",
        parameters={
            "type": "object",
            "properties": {"item": {"$ref": "#/$defs/Item"}},
            "$defs": {"Item": {"type": "object", "properties": {"id": {"type": "integer"}}}},
        },
    )
    schema = call_schema([tool])
    assert list(schema["properties"]) == ["name", "arguments"]
    assert schema["properties"]["arguments"]["properties"]["item"]["properties"] == {"id": {"type": "integer"}}
    assert "oneOf" in call_schema([tool, SEARCH])


# ---- build_chat_model misconfiguration (no model needed) ----

def test_missing_model_path_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(LLMConfigError, match=str(missing)):
        build_chat_model(Settings(_env_file=None, model_path=missing))


def test_model_path_that_is_not_gguf_is_refused(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("not a model")
    with pytest.raises(LLMConfigError, match="not a GGUF file"):
        build_chat_model(Settings(_env_file=None, model_path=fake))
    with pytest.raises(LLMConfigError, match="not a GGUF file"):
        LocalChatModel(fake, n_threads=1, n_ctx=512, default_timeout_s=1, default_max_tokens=8)


def test_truncated_gguf_fails_to_load_with_a_config_error(tmp_path):
    pytest.importorskip("llama_cpp")
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(LLMConfigError, match="could not load"):
        LocalChatModel(fake, n_threads=1, n_ctx=512, default_timeout_s=1, default_max_tokens=8)


# ---- the real embedded model (a handful of short calls; each costs seconds on 2 cores) ----

@pytest.fixture(scope="session")
def local_model() -> LocalChatModel:
    settings = Settings()
    # A generous default deadline: these tests check behaviour, not speed (CI machines can be slow).
    update = {"llm_backend": "local", "llm_context": 2048, "llm_timeout_s": 600.0}
    model = build_chat_model(settings.model_copy(update=update))
    assert isinstance(model, LocalChatModel)
    return model


@pytest.mark.local_llm
def test_prompt_uses_the_gguf_chat_template_with_tools(local_model):
    prompt = local_model.render([Message(role="system", content="You recommend films."),
                                 Message(role="user", content="hi")], [SEARCH])
    assert prompt.startswith("<|im_start|>system\nYou recommend films.")
    assert "<tools>" in prompt and '"name": "search_movies"' in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


@pytest.mark.local_llm
def test_json_schema_with_enum_returns_valid_json(local_model):
    schema = {
        "type": "object",
        "properties": {"genre": {"type": "string", "enum": ["comedy", "horror", "romance"]}},
        "required": ["genre"],
    }
    reply = local_model.chat(
        [Message(role="system", content="Reply with JSON: the genre the user asks for."),
         Message(role="user", content="I want something really scary tonight.")],
        json_schema=schema,
        max_tokens=24,
    )
    assert json.loads(reply.text)["genre"] in {"comedy", "horror", "romance"}
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.latency_s > 0 and reply.first_token_s is not None


@pytest.mark.local_llm
def test_forced_tool_choice_returns_a_parsed_call(local_model):
    reply = local_model.chat(
        [Message(role="user", content="Find space adventure movies released before 1990.")],
        tools=[SEARCH, RATE],
        tool_choice="search_movies",
        max_tokens=48,
    )
    assert [c.name for c in reply.tool_calls] == ["search_movies"]
    assert isinstance(reply.tool_calls[0].arguments["query"], str) and reply.tool_calls[0].arguments["query"]
    assert reply.finish_reason == "tool_calls" and reply.usage.completion_tokens > 0


@pytest.mark.local_llm
def test_streaming_chunks_join_to_the_reply(local_model):
    chunks: list[str] = []
    reply = local_model.chat(
        [Message(role="user", content="Name three famous science fiction films, comma separated.")],
        max_tokens=24,
        on_token=chunks.append,
    )
    assert len(chunks) >= 3
    assert "".join(chunks) == reply.text and reply.text.strip()
    assert reply.usage.completion_tokens > 0 and 0 < reply.first_token_s <= reply.latency_s


@pytest.mark.local_llm
def test_tiny_timeout_raises(local_model):
    with pytest.raises(LLMTimeout):
        local_model.chat([Message(role="user", content="Write a long essay about cinema history.")],
                         max_tokens=64, timeout_s=0.001)



@pytest.mark.local_llm
def test_auto_tool_choice_parses_the_call_the_model_writes(local_model):
    reply = local_model.chat(
        [Message(role="system", content="You help people find movies. Use the tools."),
         Message(role="user", content="Find space adventure movies released before 1990.")],
        tools=[SEARCH],
        tool_choice="auto",
        max_tokens=48,
    )
    assert [c.name for c in reply.tool_calls] == ["search_movies"]
    assert "tool_call" not in reply.text
