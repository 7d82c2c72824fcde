"""The one LLM step: the request is what the caller asks for, the answer is validated, failures are typed."""

from __future__ import annotations

import json

from pydantic import BaseModel

from agent.llm import ChatReply, LLMTimeout, LLMUnavailable, ScriptedChatModel, Usage
from agent.prompts import load_prompt
from agent.step import NOT_JSON, Fallback, json_object, llm_step

PROMPT = load_prompt("extract.v1")
VARIABLES = {"text": "a comedy", "options": ["Comedy", "Horror"]}


class Liked(BaseModel):
    liked: list[str]


def step(model, **options):
    defaults = dict(purpose="extract", variables=VARIABLES, output=Liked, max_tokens=48, timeout_s=5.0)
    return llm_step(model, PROMPT, **{**defaults, **options})


def test_fallback_prints_as_the_trace_strings():
    assert str(Fallback("rerank", "LLMTimeout")) == "rerank: LLMTimeout"
    assert str(Fallback("extract", NOT_JSON)) == "extract: output is not the JSON asked for"


def test_json_object_is_found_in_surrounding_text():
    assert json_object('Sure! {"a": 1} hope that helps') == {"a": 1}
    assert json_object("[1, 2]") is None and json_object("{broken") is None and json_object("") is None
    assert json_object('{"a": 1} and {"b": 2}') is None  # two objects are not the one asked for


def test_a_valid_answer_is_parsed_and_traced():
    reply = ChatReply(text='{"liked": ["Comedy"]}', usage=Usage(prompt_tokens=30, completion_tokens=7),
                      model="m-1", latency_s=0.25)
    out = step(ScriptedChatModel([reply], name="fake"))
    assert out.fallback is None and out.value == Liked(liked=["Comedy"]) and out.attempts == 1
    assert out.text == '{"liked": ["Comedy"]}'
    t = out.trace
    assert (t.purpose, t.model, t.prompt_id, t.prompt_tokens, t.completion_tokens, t.latency_s, t.ok, t.error) == (
        "extract", "m-1", "extract.v1", 30, 7, 0.25, True, None)


def test_the_request_carries_exactly_the_options_given():
    schema = {"type": "object", "properties": {"liked": {"type": "array"}}}
    model = ScriptedChatModel(['{"liked": []}', '{"liked": []}', "plain"])
    step(model, json_schema=schema)
    step(model, temperature=0.7)
    llm_step(model, PROMPT, purpose="reply", variables=VARIABLES, output=None, max_tokens=9, timeout_s=2.0)
    hand, generated, plain = model.calls
    assert hand.json_schema == schema and hand.max_tokens == 48 and hand.timeout_s == 5.0 and hand.temperature == 0.0
    assert generated.json_schema == Liked.model_json_schema() and generated.temperature == 0.7
    assert plain.json_schema is None and plain.max_tokens == 9
    assert hand.messages == PROMPT.render(**VARIABLES)


def test_plain_text_streams_and_is_returned_as_is():
    chunks: list[str] = []
    out = llm_step(ScriptedChatModel(["  Hello there.  "]), PROMPT, purpose="reply", variables=VARIABLES,
                   output=None, max_tokens=9, timeout_s=2.0, on_token=chunks.append)
    assert out.value == "  Hello there.  " and "".join(chunks) == "  Hello there.  " and out.fallback is None


def test_a_model_error_is_a_typed_fallback_with_a_failed_trace():
    out = step(ScriptedChatModel([LLMTimeout("x" * 500)], name="fake"))
    assert out.value is None and out.fallback == Fallback("extract", "LLMTimeout")
    assert out.trace.ok is False and out.trace.error == "x" * 200 and out.trace.model == "fake"
    assert step(ScriptedChatModel([LLMUnavailable("down")])).fallback == Fallback("extract", "LLMUnavailable")


def test_unreadable_answers_fall_back_with_the_given_reason():
    for text in ("no json here", '{"liked": "Comedy"}', '{"other": 1}'):
        out = step(ScriptedChatModel([text]))
        assert out.value is None and str(out.fallback) == "extract: output is not the JSON asked for"
        assert out.trace.ok and out.text == text  # the call worked; its answer did not
    assert step(ScriptedChatModel(["nope"]), invalid="not legal").fallback == Fallback("extract", "not legal")


def test_validate_can_reject_with_a_reason_or_transform():
    def only_comedy(value: Liked) -> Liked:
        if value.liked != ["Comedy"]:
            raise ValueError("liked must be Comedy")
        return Liked(liked=[v.upper() for v in value.liked])

    assert step(ScriptedChatModel(['{"liked": ["Comedy"]}']), validate=only_comedy).value.liked == ["COMEDY"]
    out = step(ScriptedChatModel(['{"liked": ["Horror"]}']), validate=only_comedy)
    assert out.fallback == Fallback("extract", "liked must be Comedy") and out.value is None


def test_a_rejected_answer_is_re_asked_with_the_error_within_the_bound():
    def no_horror(value: Liked) -> Liked:
        if "Horror" in value.liked:
            raise ValueError("Horror was not asked about")
        return value

    model = ScriptedChatModel(['{"liked": ["Horror"]}', "not json", '{"liked": ["Comedy"]}'])
    out = step(model, validate=no_horror, retries=2)
    assert out.value == Liked(liked=["Comedy"]) and out.attempts == 3 and out.fallback is None
    first, second, third = model.calls
    assert len(first.messages) == 2 and len(second.messages) == 4 and len(third.messages) == 6
    assert second.messages[2].role == "assistant" and second.messages[2].content == '{"liked": ["Horror"]}'
    assert second.messages[3].role == "user" and "Horror was not asked about" in second.messages[3].content
    assert third.messages[4].content == "not json" and "JSON" in third.messages[5].content
    assert out.trace.prompt_tokens == sum(len(" ".join(m.content for m in c.messages).split()) for c in model.calls)


def test_re_asks_stop_at_the_bound_with_the_last_reason():
    def never(value: Liked) -> Liked:
        raise ValueError("never good")

    model = ScriptedChatModel(['{"liked": []}'] * 2)
    out = step(model, validate=never, retries=1)
    assert out.fallback == Fallback("extract", "never good") and out.attempts == 2 and len(model.calls) == 2
    assert model.remaining == 0


def test_an_error_during_a_re_ask_is_the_fallback():
    model = ScriptedChatModel(["not json", LLMTimeout("slow")])
    out = step(model, retries=3)
    assert out.fallback == Fallback("extract", "LLMTimeout") and out.trace.ok is False and len(model.calls) == 2
    assert out.text == "not json"


def test_json_answers_in_prose_are_read():
    out = step(ScriptedChatModel(["Here you go: " + json.dumps({"liked": ["Comedy"]}) + " Enjoy!"]))
    assert out.value == Liked(liked=["Comedy"])
