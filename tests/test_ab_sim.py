"""`concierge ab --simulator llm`: paired LLM-simulated sessions with the scripted fake model."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from agent.llm import ChatRequest, ScriptedChatModel
from agent.planner import planner_branches
from ui.cli import build_app
from conversation.service import ServiceConfig
from evals.ab import ABError, Variant, check_variant, run_sim_ab, summarise
from evals.simulators.llm import simulator_factory
from helpers import tiny_movies
from sim_support import amelie_case, shining_case

RERANK = [Variant("A", "rerank.v1"), Variant("B", "rerank.v2")]


def rerank_fake(request: ChatRequest) -> str:
    """rerank.v1 keeps the ranker's order; rerank.v2 (it ranks by stated wishes) reverses it."""
    numbers = request.json_schema["properties"]["ranking"]["items"]["properties"]["n"]["enum"]
    if "own stated wishes" in request.messages[0].content:
        numbers = numbers[::-1]
    return json.dumps({"ranking": [{"n": n, "reason": "fits", "cites": []} for n in numbers[:5]]})


def any_fake(request: ChatRequest) -> str:
    """Every call of an llm-mode agent, the simulated user and the judge, told apart by its schema."""
    schema = request.json_schema or {}
    props = schema.get("properties", {})
    if "relevance" in props:
        return json.dumps({"relevance": 4, "naturalness": 3, "faithfulness": 5})
    if "anyOf" in schema or "action" in props:
        actions = planner_branches(schema)
        if "Rule 1" in request.messages[0].content and "ask" in actions:
            return json.dumps({"action": "ask", "attribute": "A1"})
        return json.dumps({"action": "recommend", "items": actions["recommend"]["items"]["items"]["enum"][:5]})
    return "Something creepy from the eighties, please."


def _cases():
    return [shining_case(), amelie_case(), shining_case("impatient", patience=2, cooperativeness="uncooperative")]


def test_both_rerank_variants_meet_the_same_simulated_users(tmp_path):
    catalog = tiny_movies()
    model = ScriptedChatModel(default=rerank_fake)
    runs = run_sim_ab(_cases(), component="rerank", variants=RERANK, base=ServiceConfig(phrase=False), model=model,
                      catalog_for=lambda case: catalog, simulator_factory=simulator_factory(None), sessions=6,
                      seed=2, concurrency=1, folder=tmp_path, tag="t")
    a, b = runs
    assert [r["key"] for r in a.rows] == [r["key"] for r in b.rows] == [
        "shining:2", "amelie:2", "impatient:2", "shining:3", "amelie:3", "impatient:3"]
    assert {p for r in a.rows for p in r["prompts"]["agent"]} == {"rerank.v1"}
    assert {p for r in b.rows for p in r["prompts"]["agent"]} == {"rerank.v2"}
    assert all(r["agent_tokens"] == r["tokens_by_role"]["agent"] for r in a.rows + b.rows)
    # the re-ranker is asked whenever two or more candidates are shown
    assert all(r["agent_tokens"] > 0 for r in a.rows + b.rows if any(len(t.get("shown") or []) > 1 for t in r["transcript"]))
    out = summarise(runs, simulator="llm", seed=0)
    s = out["summary"]
    assert s["pairs"] == 6 and {"success", "turns", "abandoned", "agent_tokens"} <= set(s["deltas"])
    assert s["cost"]["A"]["tokens"] == sum(r["agent_tokens"] for r in a.rows)
    assert out["variants"]["B"]["metrics"]["success"] == s["deltas"]["success"]["b"]


def test_a_rerun_resumes_each_variant_from_its_own_file(tmp_path):
    catalog = tiny_movies()
    kwargs = dict(component="rerank", variants=RERANK, base=ServiceConfig(phrase=False),
                  catalog_for=lambda case: catalog, simulator_factory=simulator_factory(None), seed=0, concurrency=1,
                  folder=tmp_path, tag="t")
    first = run_sim_ab(_cases(), model=ScriptedChatModel(default=rerank_fake), sessions=3, **kwargs)
    model = ScriptedChatModel(default=rerank_fake)
    again = run_sim_ab(_cases(), model=model, sessions=3, **kwargs)
    assert [r.resumed for r in again] == [3, 3] and model.calls == []
    assert [r.rows for r in again] == [r.rows for r in first]
    seen: list[tuple[str, int]] = []
    more = run_sim_ab(_cases(), model=ScriptedChatModel(default=rerank_fake), sessions=5,
                      on_progress=lambda label, n: seen.append((label, n)), **kwargs)
    assert [len(r.rows) for r in more] == [5, 5] and [r.resumed for r in more] == [3, 3]
    # played in steps, A then B: both variants reach each count before either goes further
    assert [n for label, n in seen if label == "A"][-1] == 5 and seen[-1] == ("B", 5)
    assert seen.index(("B", 4)) < seen.index(("A", 5))


def test_the_nlu_component_names_what_it_can_vary_until_the_service_reads_text_with_a_prompt():
    with pytest.raises(ABError, match="no `nlu_prompt` setting.*planner, rerank"):
        check_variant("nlu", "extract.v1")


def test_cli_ab_with_llm_simulated_users_and_judge(tmp_path, monkeypatch):
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(c.model_dump_json() for c in _cases()) + "\n", encoding="utf-8")
    app = build_app(model_factory=lambda settings: ScriptedChatModel(default=any_fake),
                    catalog_loader=lambda path: tiny_movies())
    monkeypatch.setenv("CONCIERGE_DATA_DIR", str(tmp_path / "data"))
    report = tmp_path / "ab-sim.md"
    result = CliRunner().invoke(app, [
        "ab", "--component", "planner", "--variant", "A=planner.v1", "--variant", "B=planner.v2", "--simulator", "llm",
        "--cases", str(cases), "--sessions", "3", "--mode", "llm", "--report", str(report), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["simulator"] == "llm" and out["cases"] == str(cases) and out["summary"]["pairs"] == 3
    assert out["summary"]["deltas"]["judge.relevance"]["a"] == 4.0
    assert "cost" in out["summary"] and "McNemar" in report.read_text(encoding="utf-8")


def test_cli_ab_llm_simulator_needs_a_cases_file_and_a_good_one(tmp_path):
    def no_model(settings):
        raise AssertionError("the model must not load before the cases are checked")

    app = build_app(model_factory=no_model)
    base = ["ab", "--component", "planner", "--variant", "A=planner.v1", "--variant", "B=planner.v2",
            "--simulator", "llm"]
    result = CliRunner().invoke(app, base)
    assert result.exit_code == 2 and "--cases" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "source": "redial", "persona": {"name": "p", "patience": 0}, "need": {}}\n')
    result = CliRunner().invoke(app, [*base, "--cases", str(bad)])
    assert result.exit_code == 2 and "'x'" in result.output and "patience" in result.output
