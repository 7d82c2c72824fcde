"""`concierge ab` end to end on the rule simulator with the scripted fake model in `llm` mode."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import evals.rule_eval
from agent.graph import ItemAttributeGraph
from agent.llm import ChatRequest, ScriptedChatModel
from agent.policy import PopularityScorer, RankerScorer
from agent.planner import planner_branches
from ui.cli import build_app
from conversation.service import ServiceConfig
from evals.ab import (ABError, Variant, base_rule_config, check_run, check_variant, parse_variants, read_rows,
                      run_rule_ab, runs_file, summarise, variant_config)
from evals.rule_eval import Bench, RuleSetup, session_pairs
from retrieval.ranker import Ranker, RankerConfig
from tests.test_rule_sim import music

VARIANTS = [Variant("A", "planner.v1"), Variant("B", "planner.v2")]


def planner_fake(request: ChatRequest) -> str:
    """planner.v1 recommends the shown items at once; planner.v2 (its system text has numbered rules) asks
    the first listed attribute while asking is legal."""
    actions = planner_branches(request.json_schema)
    if "Rule 1" in request.messages[0].content and "ask" in actions:
        return json.dumps({"action": "ask", "attribute": "A1"})
    shown = actions["recommend"]["items"]["items"]["enum"]
    return json.dumps({"action": "recommend", "items": shown[:10]})


@pytest.fixture(scope="module")
def bench() -> Bench:
    catalog = music(96)  # more candidates than one list holds, so the planner has something to decide
    graph = ItemAttributeGraph(catalog, types=("tag",))
    ranker = Ranker.train(catalog, config=RankerConfig(l2=1.0))
    return Bench(catalog, graph, RankerScorer(ranker, graph, PopularityScorer(catalog, graph)))


def test_variants_parse_and_bad_ones_fail_fast():
    assert parse_variants(["A=planner.v1", "B=planner.v2"]) == VARIANTS
    for bad in (["A=planner.v1"], ["A=planner.v1", "A=planner.v2"], ["A=planner.v1", "B=planner.v1"], ["planner.v1", "B=x"]):
        with pytest.raises(ABError):
            parse_variants(bad)


def test_unknown_prompt_lists_the_known_ones_and_a_foreign_prompt_names_the_fitting_ones():
    with pytest.raises(ABError, match="known prompts: .*planner.v1"):
        check_variant("planner", "planner.v9")
    with pytest.raises(ABError, match="not a rerank prompt; rerank prompts: rerank.v1, rerank.v2, rerank_fewshot.v1"):
        check_variant("rerank", "planner.v2")
    check_variant("rerank", "rerank_fewshot.v1")
    with pytest.raises(ABError, match="unknown component"):
        check_variant("reply", "reply.v1")


def test_a_component_that_would_never_run_is_refused():
    with pytest.raises(ABError, match="--mode llm"):
        check_run("planner", simulator="rule", mode="graph")
    with pytest.raises(ABError, match="--simulator llm"):
        check_run("nlu", simulator="rule", mode="llm")
    check_run("rerank", simulator="rule", mode="graph")


def test_a_variant_changes_only_its_component_prompt():
    base = ServiceConfig(mode="llm")
    assert variant_config(base, "planner", "planner.v2") == ServiceConfig(mode="llm", planner_prompt="planner.v2")
    assert variant_config(base, "rerank", "rerank.v2").rerank_prompt == "rerank.v2"


def _run(bench, tmp_path, model, pairs, **kwargs):
    base = base_rule_config(RuleSetup(recommend_below=3), mode="llm")
    return run_rule_ab(bench, pairs, component="planner", variants=VARIANTS, base=base, model=model, seed=3,
                       folder=tmp_path, tag="t", **kwargs)


def test_both_variants_meet_the_same_users_and_seeds_with_their_own_prompt(bench, tmp_path):
    model = ScriptedChatModel(default=planner_fake)
    pairs = session_pairs(bench.catalog, "test")
    a, b = _run(bench, tmp_path, model, pairs)
    assert [r["key"] for r in a.rows] == [r["key"] for r in b.rows] == [f"{u}:{t}" for u, t in pairs]
    assert [r["opening"] for r in a.rows] == [r["opening"] for r in b.rows]  # same seeded openings
    assert {r["prompt_id"] for r in a.rows} == {"planner.v1"} and {r["prompt_id"] for r in b.rows} == {"planner.v2"}
    systems = {c.messages[0].content.split("\n")[0] for c in model.calls}
    assert len(systems) == 2  # each variant's own system text reached the model
    assert all(r["asks"] == 0 for r in a.rows) and any(r["asks"] > 0 for r in b.rows)
    # one planner call a turn, except a last list that holds every candidate (nothing to decide)
    assert all(r["tokens"] > 0 and 1 <= r["llm_calls"] <= r["asks"] + r["recommends"] for r in a.rows + b.rows)
    assert all(r["invalid_shown"] == 0 for r in a.rows + b.rows)


def test_an_interrupted_ab_resumes_without_repeating_a_session(bench, tmp_path):
    pairs = session_pairs(bench.catalog, "test")
    first = _run(bench, tmp_path, ScriptedChatModel(default=planner_fake), pairs[:3])
    # a crash while writing: the last line of B's file is torn
    path = runs_file(tmp_path, name="t", variant=VARIANTS[1])
    path.write_text(path.read_text(encoding="utf-8") + '{"key": "u9', encoding="utf-8")
    model = ScriptedChatModel(default=planner_fake)
    seen: list[tuple[str, int]] = []
    again = _run(bench, tmp_path, model, pairs, on_progress=lambda label, n: seen.append((label, n)))
    assert [run.resumed for run in again] == [3, 3]
    # resumed counts first, then A and B alternate over the remaining pairs, so a crash leaves them paired
    assert seen == [("A", 3), ("B", 3)] + [(label, n) for n in range(4, 9) for label in "AB"]
    assert again[0].rows[:3] == first[0].rows and again[1].rows[:3] == first[1].rows
    for run in again:
        assert len(read_rows(run.runs_file)) == len(pairs)
    calls_now = len(model.calls)
    _run(bench, tmp_path, model, pairs)
    assert len(model.calls) == calls_now  # everything was saved: nothing is played twice


def test_summary_pairs_the_sessions_and_tests_them(bench, tmp_path):
    runs = _run(bench, tmp_path, ScriptedChatModel(default=planner_fake), session_pairs(bench.catalog, "test"))
    out = summarise(runs, simulator="rule", seed=0)
    s = out["summary"]
    assert s["pairs"] == 8 and set(s["deltas"]) >= {"success", "turns", "hdcg", "tokens", "latency_s"}
    turns = s["deltas"]["turns"]
    assert turns["delta"] == pytest.approx(turns["b"] - turns["a"])
    assert turns["ci95"][0] <= turns["delta"] <= turns["ci95"][1]
    assert {"a_only", "b_only", "p_value"} <= set(s["mcnemar_success"]) and 0 <= s["wilcoxon_turns"]["p_value"] <= 1
    assert s["cost"]["A"]["tokens_per_success"] > 0
    assert out["variants"]["B"]["prompt"] == "planner.v2" and out["variants"]["A"]["metrics"]["turns"] == turns["a"]


def test_cli_ab_writes_markdown_and_html_reports_and_one_json_object(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(evals.rule_eval, "load_bench", lambda dataset, root, data_dir: bench)
    app = build_app(model_factory=lambda settings: ScriptedChatModel(default=planner_fake))
    monkeypatch.setenv("CONCIERGE_DATA_DIR", str(tmp_path / "data"))
    report = tmp_path / "reports" / "ab-test.md"
    args = ["ab", "--component", "planner", "--variant", "A=planner.v1", "--variant", "B=planner.v2",
            "--simulator", "rule", "--sessions", "6", "--mode", "llm", "--seed", "1", "--report", str(report), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {"command", "labels", "variants", "summary", "report", "report_html", "model", "seconds"} <= set(out)
    assert out["summary"]["pairs"] == 6 and out["model"] == "scripted" and out["labels"] == ["A", "B"]
    assert {"mcnemar_success", "wilcoxon_turns", "cost", "deltas", "success_by_turn"} <= set(out["summary"])
    text = report.read_text(encoding="utf-8")
    assert "## Paired deltas" in text and "McNemar" in text and "Wilcoxon" in text and "![Success by turn]" in text
    html = report.with_suffix(".html").read_text(encoding="utf-8")
    assert "<table>" in html and html.count("data:image/png;base64,") == 3
    assert (tmp_path / "reports" / "ab-test-success.png").stat().st_size > 1000
    again = CliRunner().invoke(app, args)  # resumes: every session was saved
    assert json.loads(again.stdout)["variants"]["A"]["resumed"] == 6


def test_cli_ab_unknown_prompt_fails_fast_with_the_known_ones():
    def no_model(settings):
        raise AssertionError("the model must not load before the variants are checked")

    result = CliRunner().invoke(build_app(model_factory=no_model), ["ab", "--component", "planner", "--variant", "A=planner.v1",
                                      "--variant", "B=planner.v7"])
    assert result.exit_code == 2 and "planner.v2" in result.output and "known prompts" in result.output
