import json

import pytest

from agent.llm import ChatReply, Message, ScriptedChatModel, ScriptExhausted, Usage
from evals.llm_cache import CachedChatModel, ResponseCache, cache_key
from evals.sim_runner import run_sim
from evals.simulators.judge import LLMJudge
from evals.simulators.llm import simulator_factory
from sim_support import amelie_case, shining_case, tiny_service

HELLO = [Message(role="user", content="hello")]


def test_hit_after_miss_and_persisted(tmp_path):
    path = tmp_path / "cache.sqlite3"
    inner = ScriptedChatModel([ChatReply(text="hi there", usage=Usage(prompt_tokens=3, completion_tokens=2))])
    model = CachedChatModel(inner, ResponseCache(path))
    first = model.chat(HELLO, max_tokens=20)
    second = model.chat(HELLO, max_tokens=20)
    assert first.text == second.text == "hi there" and second.usage.total_tokens == 5
    assert (model.cache.hits, model.cache.misses, len(inner.calls)) == (1, 1, 1)
    again = CachedChatModel(ScriptedChatModel([]), ResponseCache(path))  # a new process, same file
    assert again.chat(HELLO, max_tokens=20).text == "hi there"


def test_key_covers_model_messages_tools_schema_and_parameters():
    base = dict(tools=None, tool_choice=None, json_schema=None, max_tokens=20, temperature=0.0)
    key = cache_key("m", HELLO, **base)[0]
    assert key == cache_key("m", list(HELLO), **base)[0]
    assert key != cache_key("other", HELLO, **base)[0]
    assert key != cache_key("m", [Message(role="user", content="hello!")], **base)[0]
    assert key != cache_key("m", HELLO, **{**base, "json_schema": {"type": "object"}})[0]
    assert key != cache_key("m", HELLO, **{**base, "max_tokens": 21})[0]
    assert key != cache_key("m", HELLO, **{**base, "temperature": 0.7})[0]
    assert key != cache_key("m", HELLO, **{**base, "tool_choice": "auto"})[0]


def test_failures_are_recorded_and_replayed_but_not_misconfiguration(tmp_path):
    from agent.llm import LLMConfigError, LLMTimeout, LLMUnavailable

    path = tmp_path / "c.sqlite3"
    model = CachedChatModel(ScriptedChatModel([LLMTimeout("slow"), LLMUnavailable("down")]), ResponseCache(path))
    with pytest.raises(LLMTimeout, match="slow"):
        model.chat(HELLO)
    with pytest.raises(LLMUnavailable, match="down"):
        model.chat(HELLO, max_tokens=7)
    replay = CachedChatModel(ScriptedChatModel([]), ResponseCache(path))  # no model call is left to make
    with pytest.raises(LLMTimeout, match="slow"):
        replay.chat(HELLO)
    with pytest.raises(LLMUnavailable, match="down"):
        replay.chat(HELLO, max_tokens=7)
    broken = CachedChatModel(ScriptedChatModel([LLMConfigError("no key"), "ok"]), ResponseCache(tmp_path / "d.sqlite3"))
    with pytest.raises(LLMConfigError):
        broken.chat(HELLO)
    assert broken.chat(HELLO).text == "ok"


def _talkative(request):
    task = request.messages[-1].content.split("Your task now:")[-1]
    return f"(as asked) {task.strip().splitlines()[0]}"


def _judge_reply(request):
    return json.dumps({"relevance": 4, "naturalness": 3, "faithfulness": 5})


def test_a_run_replays_exactly_from_the_cache(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite3")
    cases = [shining_case(), amelie_case()]

    def run(sim_model, judge_model, out):
        return run_sim(cases, service_factory=lambda case: tiny_service(), sessions=4, seed=1, out_jsonl=out,
                       simulator_factory=simulator_factory(CachedChatModel(sim_model, cache)),
                       judge=LLMJudge(CachedChatModel(judge_model, cache)))

    first = run(ScriptedChatModel(default=_talkative), ScriptedChatModel(default=_judge_reply), tmp_path / "a.jsonl")
    misses = cache.misses
    replay = run(ScriptedChatModel(), ScriptedChatModel(), tmp_path / "b.jsonl")  # any real call would fail
    assert cache.misses == misses and cache.hits >= misses
    strip = ("latency_s", "latency_by_role")
    assert [{k: v for k, v in r.items() if k not in strip} for r in first] == \
           [{k: v for k, v in r.items() if k not in strip} for r in replay]
    assert first[0]["judge"] == {"relevance": 4, "naturalness": 3, "faithfulness": 5}
    with pytest.raises(ScriptExhausted):
        ScriptedChatModel().chat(HELLO)


def test_a_replayed_call_reports_the_latency_recorded_when_the_model_answered(tmp_path):
    from agent.llm import ChatReply, Message, ScriptedChatModel, Usage
    from evals.llm_cache import CachedChatModel, ResponseCache

    inner = ScriptedChatModel([ChatReply(text="hi", latency_s=2.5, usage=Usage(prompt_tokens=3, completion_tokens=1))])
    model = CachedChatModel(inner, ResponseCache(tmp_path / "c.sqlite3"))
    ask = [Message(role="user", content="hello")]
    first, again = model.chat(ask), model.chat(ask)
    assert len(inner.calls) == 1 and again.text == "hi" and again.latency_s == first.latency_s == 2.5
    assert again.usage.prompt_tokens == 3


def test_a_replayed_turn_is_timed_by_the_model_time_recorded():
    from agent.state import LLMCallTrace, Trace

    live = Trace(latency_s=2.0, llm_calls=[LLMCallTrace(purpose="plan", model="m", prompt_id="p", latency_s=1.8)])
    replayed = Trace(latency_s=0.01, llm_calls=[LLMCallTrace(purpose="plan", model="m", prompt_id="p", latency_s=1.8)])
    assert live.timed_s() == 2.0 and replayed.timed_s() == 1.8 and Trace(latency_s=0.3).timed_s() == 0.3
