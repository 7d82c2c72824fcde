"""The LLM planner chooses among CPR's legal actions; everything else falls back to CPR, counted."""

from __future__ import annotations

import json

from agent.llm import LLMTimeout, ScriptedChatModel
from agent.planner import LLMPlanner, PlannerConfig
from agent.policy import CPRPolicy, PolicyConfig
from agent.prompts import load_prompt
from conversation.nlu import Understanding
from conversation.service import ConversationService, ServiceConfig
from agent.state import Attr, ConvState
from tests.helpers import tiny_movies

CAT = tiny_movies()
POLICY = CPRPolicy(CAT, PolicyConfig(recommend_below=1, legal_attributes=3))


class FakeTools:
    """Records searches; returns ids in a fixed order (one of them off the path)."""

    def __init__(self, ids):
        self.ids, self.calls = ids, []

    def call(self, name, arguments):
        from tools.base import ToolResult

        self.calls.append((name, arguments))
        return ToolResult(tool=name, ok=True, observation=f"{len(self.ids)} hits", ids=self.ids)


def planner(steps, tools=None, **config):
    model = ScriptedChatModel(steps)
    return LLMPlanner(model, load_prompt("planner.v1"), CAT, tools=tools, config=PlannerConfig(**config), list_size=3), model


def state():
    return ConvState(session_id="s", accepted=[Attr(type="genre", value="Comedy")])


def test_llm_asks_one_of_the_legal_attributes():
    decision = POLICY.decide(state())
    p, model = planner([json.dumps({"action": "ask", "attribute": "A2"})])
    plan = p.plan(state(), decision)
    assert plan.fallback is None and plan.decision.kind == "ask"
    assert plan.decision.attribute == decision.attributes[1][0]
    ask, recommend = model.calls[0].json_schema["anyOf"]
    assert ask["properties"] == {"action": {"const": "ask"}, "attribute": {"type": "string", "enum": ["A1", "A2", "A3"]}}
    assert recommend["required"] == ["action", "items"] and recommend["additionalProperties"] is False
    assert recommend["properties"]["items"]["maxItems"] == 3


def test_schema_has_one_branch_per_legal_action_and_compiles_to_a_grammar():
    from agent.planner import planner_schema

    only_ask = planner_schema(["ask"], 2, 0, 3)
    assert only_ask["required"] == ["action", "attribute"] and "anyOf" not in only_ask
    full = planner_schema(["ask", "recommend", "search"], 5, 8, 3)
    assert [b["properties"]["action"]["const"] for b in full["anyOf"]] == ["ask", "recommend", "search"]
    llama_cpp = __import__("pytest").importorskip("llama_cpp")
    grammar = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(full), verbose=False)
    assert grammar is not None


def test_no_llm_call_when_every_candidate_fits_in_one_list():
    few = CPRPolicy(CAT, PolicyConfig(recommend_below=50, legal_attributes=3))
    decision = few.decide(state())
    assert decision.kind == "recommend" and len(decision.candidates) == 4
    model = ScriptedChatModel([])
    plan = LLMPlanner(model, load_prompt("planner.v1"), CAT, list_size=4).plan(state(), decision)
    assert plan.decision is decision and plan.fallback is None and model.calls == []


def test_recommended_numbers_are_gated_and_filled_from_cpr():
    decision = POLICY.decide(state())
    p, _ = planner([json.dumps({"action": "recommend", "items": [3, 99, 3]})])
    plan = p.plan(state(), decision)
    ids = [i for i, _ in plan.decision.ranked]
    assert plan.decision.kind == "recommend" and ids[0] == decision.candidates[2]
    assert plan.invalid_ids_proposed == 2 and len(ids) == 3 and set(ids) <= set(decision.candidates)


def test_search_reorders_candidates_but_never_adds_off_path_items():
    decision = POLICY.decide(state())
    tools = FakeTools(["8", "4", "6"])  # 4 (Alien) is not a comedy: off the path
    p, _ = planner([json.dumps({"action": "search", "query": "quirky paris"}),
                    json.dumps({"action": "recommend", "items": [1, 2]})], tools=tools)
    plan = p.plan(state(), decision)
    ids = [i for i, _ in plan.decision.ranked]
    assert ids[:2] == ["8", "6"] and "4" not in ids
    assert tools.calls[0][1]["must_have"] == ["Comedy"] and len(plan.tool_calls) == 1
    assert len(plan.llm_calls) == 2


def test_searches_are_capped():
    decision = POLICY.decide(state())
    search = json.dumps({"action": "search", "query": "x"})
    p, model = planner([search, search, json.dumps({"action": "recommend", "items": [1]})], tools=FakeTools(["1"]),
                       max_tool_calls=2)
    plan = p.plan(state(), decision)
    assert len(plan.tool_calls) == 2 and plan.fallback is None
    assert [b["properties"]["action"]["const"] for b in model.calls[-1].json_schema["anyOf"]] == ["ask", "recommend"]


def test_invalid_output_and_timeouts_fall_back_to_cpr():
    decision = POLICY.decide(state())
    for step in ("no json here", json.dumps({"action": "dance"}), json.dumps({"action": "ask", "attribute": "A9"}),
                 LLMTimeout("slow")):
        p, _ = planner([step])
        plan = p.plan(state(), decision)
        assert plan.fallback and plan.fallback.startswith("plan:") and plan.decision is decision


def test_service_in_llm_mode_traces_the_planner_and_flags_fallbacks():
    model = ScriptedChatModel([json.dumps({"action": "recommend", "items": [2, 1]}), LLMTimeout("slow")])
    config = ServiceConfig(policy=PolicyConfig(recommend_below=50, list_size=1), mode="llm", phrase=False)
    service = ConversationService(CAT, model=model, config=config)
    sid = service.start()
    comedies = service.policy.decide(state()).candidates  # four comedies in the ranker's order
    first = service.respond_structured(sid, Understanding(accepted=[Attr(type="genre", value="Comedy")]))
    assert first.action.kind == "recommend" and [r.item_id for r in first.action.items] == [comedies[1]]
    assert [c.purpose for c in first.trace.llm_calls] == ["plan"] and not first.trace.degraded
    second = service.respond_structured(sid, Understanding(reject_shown=True))
    assert second.trace.degraded and second.trace.fallbacks == ["plan: LLMTimeout"]
    assert [r.item_id for r in second.action.items] and comedies[1] not in {r.item_id for r in second.action.items}


def test_a_prompt_may_declare_the_policys_choice_and_sees_cprs_question():
    decision = POLICY.decide(state())
    model = ScriptedChatModel([json.dumps({"action": "ask", "attribute": "A1"})])
    plan = LLMPlanner(model, load_prompt("planner.v3"), CAT, list_size=3).plan(state(), decision)
    assert plan.decision.attribute == decision.attribute
    assert "Policy's choice: ask A1." in model.calls[0].messages[-1].content  # CPR asks its best split, A1


def test_planner_variants_of_the_ab_include_one_with_more_variables():
    from evals.ab import component_prompts

    assert {"planner.v1", "planner.v2", "planner.v3"} <= set(component_prompts("planner"))
    assert "rerank.v1" not in component_prompts("planner")
