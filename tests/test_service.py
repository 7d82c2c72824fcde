"""The service end to end over a tiny catalog, with the scripted chat model."""

import pytest

from agent.llm import ChatReply, LLMTimeout, LLMUnavailable, ScriptedChatModel, Usage
from agent.policy import PolicyConfig
from conversation.service import ConversationService, ServiceConfig
from conversation.store import UnknownSession
from tests.helpers import tiny_movies


def _service(model, **policy):
    config = ServiceConfig(policy=PolicyConfig(**{"recommend_below": 2, **policy}))
    return ConversationService(tiny_movies(), model=model, config=config)


def test_recommends_real_items_with_llm_phrasing_and_trace():
    model = ScriptedChatModel([ChatReply(text="Here are two funny animated picks.", usage=Usage(prompt_tokens=90, completion_tokens=8))])
    service = _service(model)
    sid = service.start()
    result = service.respond(sid, "a funny animated movie")
    assert result.action.kind == "recommend"
    assert [r.item_id for r in result.action.items] == ["1", "2"]
    assert result.text.startswith("Here are two funny animated picks.")
    assert "Toy Story (1995)" in result.text and "Shrek (2001)" in result.text
    assert result.trace.llm_calls[0].prompt_id == "reply.v3"
    assert result.trace.llm_calls[0].prompt_tokens == 90
    assert not result.trace.degraded
    # The LLM saw the items as data, and nothing but them.
    prompt = model.calls[0].messages[1].content
    assert "Toy Story" in prompt and "Alien" not in prompt


def test_asks_then_uses_the_answer():
    model = ScriptedChatModel(default="Would you like that?")
    service = _service(model, recommend_below=1, max_questions=1)
    sid = service.start()
    first = service.respond(sid, "something funny")
    assert first.action.kind == "ask" and first.action.attribute is not None
    asked = first.action.attribute
    second = service.respond(sid, "yes")
    assert second.action.kind == "recommend"
    assert all(service.catalog.items[r.item_id].has(asked.value) for r in second.action.items)
    assert asked in service.state(sid).accepted


def test_rejecting_shown_items_removes_them():
    service = _service(ScriptedChatModel(default="ok"), recommend_below=10)
    sid = service.start()
    first = service.respond(sid, "a comedy")
    shown = {r.item_id for r in first.action.items}
    second = service.respond(sid, "none of these")
    assert shown.isdisjoint({r.item_id for r in second.action.items})


@pytest.mark.parametrize("failure", [LLMTimeout("deadline"), LLMUnavailable("refused")])
def test_dead_llm_gives_degraded_but_correct_answer(failure):
    service = _service(ScriptedChatModel([failure]))
    sid = service.start()
    result = service.respond(sid, "a funny animated movie")
    assert result.trace.degraded and result.trace.fallbacks
    assert [r.item_id for r in result.action.items] == ["1", "2"]
    assert "Toy Story (1995)" in result.text


def test_slow_llm_times_out_and_degrades():
    model = ScriptedChatModel(["too late"], delay_s=5)
    service = ConversationService(
        tiny_movies(), model=model, config=ServiceConfig(policy=PolicyConfig(recommend_below=2), llm_timeout_s=0.2)
    )
    result = service.respond(service.start(), "funny animated")
    assert result.trace.degraded and result.trace.latency_s < 2


def test_streaming_sends_lead_then_items():
    chunks = []
    service = _service(ScriptedChatModel(["Two picks for you."]))
    result = service.respond(service.start(), "funny animated", on_token=chunks.append)
    streamed = "".join(chunks)
    assert streamed.startswith("Two picks for you.") and "Toy Story (1995)" in streamed
    assert len(chunks) > 2


def test_unknown_session_is_an_error():
    with pytest.raises(UnknownSession):
        _service(ScriptedChatModel()).respond("nope", "hi")


def test_state_round_trips_and_sessions_are_isolated():
    service = _service(ScriptedChatModel(default="ok"), recommend_below=10)
    a, b = service.start(), service.start()
    service.respond(a, "horror")
    assert service.state(b).accepted == []
    assert service.state(a).accepted and service.state(a).turn == 1
    assert a != b and len(a) >= 20


def test_without_model_uses_templates():
    service = _service(None)
    result = service.respond(service.start(), "funny animated")
    assert result.text.startswith("Here are some picks that match")
    assert not result.trace.llm_calls and not result.trace.degraded


def test_llm_rerank_reorders_within_candidates_and_counts_bad_ids():
    import json

    ranking = {"ranking": [{"n": 2, "reason": "fairy tale comedy", "cites": ["fairy tale"]},
                           {"n": 7, "reason": "not a candidate", "cites": []}]}
    model = ScriptedChatModel([json.dumps(ranking), "Two picks."])
    config = ServiceConfig(policy=PolicyConfig(recommend_below=2), rerank_prompt="rerank.v1")
    service = ConversationService(tiny_movies(), model=model, config=config)
    result = service.respond(service.start(), "a funny animated movie")
    assert [r.item_id for r in result.action.items] == ["2", "1"]
    assert result.action.items[0].reason == "fairy tale comedy"
    assert result.trace.invalid_ids_proposed == 1
    assert [c.purpose for c in result.trace.llm_calls] == ["rerank", "reply"]


def test_llm_rerank_failure_keeps_ranker_order_and_flags_degraded():
    model = ScriptedChatModel([LLMTimeout("slow"), "Two picks."])
    config = ServiceConfig(policy=PolicyConfig(recommend_below=2), rerank_prompt="rerank.v1")
    service = ConversationService(tiny_movies(), model=model, config=config)
    result = service.respond(service.start(), "a funny animated movie")
    assert [r.item_id for r in result.action.items] == ["1", "2"]
    assert result.trace.degraded and result.trace.fallbacks == ["rerank: LLMTimeout"]


@pytest.mark.parametrize("text", ["", "   ", "x" * 10_000, "😂🎬🍿", "Je voudrais une comédie d'animation", "こんにちは",
                                  "aaa\x00"])
def test_odd_messages_get_a_sensible_reply(text):
    service = _service(ScriptedChatModel(default="Tell me more about what you like."))
    sid = service.start()
    result = service.respond(sid, text)
    assert result.text.strip() and result.action.kind in {"ask", "recommend"}
    for item in result.action.items:
        assert item.item_id in service.catalog.items
    assert len(service.state(sid).history[0].text) <= 2000  # long input is cut, not stored whole


def test_an_ask_turn_whose_lead_is_not_a_question_gets_the_template_question():
    model = ScriptedChatModel(default="Yes, they want genre = Comedy.")  # the model answered its own question
    service = _service(model, recommend_below=1, max_questions=1)
    result = service.respond(service.start(), "something funny")
    assert result.action.kind == "ask"
    lead = result.text.splitlines()[0]
    assert lead.endswith("?") and result.action.attribute.value in lead
    assert result.trace.fallbacks == ["reply: not a question"] and result.trace.degraded


def test_an_ask_turn_whose_question_names_another_attribute_gets_the_template_question():
    model = ScriptedChatModel(default="Would you like a western?")  # not what the policy chose to ask
    service = _service(model, recommend_below=1, max_questions=1)
    result = service.respond(service.start(), "something funny")
    assert result.action.kind == "ask" and result.action.attribute.value != "Western"
    lead = result.text.splitlines()[0]
    assert lead.endswith("?") and result.action.attribute.value in lead
    assert result.trace.fallbacks == ["reply: asks about another attribute"]


def test_a_question_naming_the_asked_value_in_other_words_is_kept():
    from agent.reply import mentions

    assert mentions("Would you like a 90s film?", "1990s") and mentions("Any zombies for you?", "zombie")
    assert mentions("Would you like a sci-fi movie?", "Sci-Fi")
    assert not mentions("Would you like an adventure movie?", "Action")


def test_the_turn_result_carries_the_lead_and_each_items_reasons_as_structure():
    service = _service(ScriptedChatModel(default="Here are two funny animated picks."))
    result = service.respond(service.start(), "a funny animated movie")
    assert result.lead == "Here are two funny animated picks." and result.text.startswith(result.lead + "\n")
    for item in result.action.items:
        assert item.reasons and "; ".join(item.reasons) == item.reason  # the UI renders the list, never splits text
    with pytest.raises(ValueError, match="CONCIERGE_MODE.*CONCIERGE_LLM_BACKEND"):
        ConversationService(tiny_movies(), model=None, config=ServiceConfig(mode="llm"))


def test_the_reply_token_cap_is_one_setting_passed_down_and_a_contradiction_is_refused():
    from conversation.app import service_config
    from conversation.settings import Settings

    assert service_config(Settings(_env_file=None, reply_max_tokens=24)).llm_max_tokens == 24
    with pytest.raises(ValueError, match="CONCIERGE_REPLY_MAX_TOKENS.*CONCIERGE_LLM_MAX_TOKENS"):
        Settings(_env_file=None, reply_max_tokens=200, llm_max_tokens=100)
