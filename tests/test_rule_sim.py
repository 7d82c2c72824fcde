"""The rule simulator drives the real service: protocol, metrics, safety counters, resumable runs."""

from __future__ import annotations

import math

import pytest

from agent.graph import ItemAttributeGraph
from agent.policy import PopularityScorer, RankerScorer
from conversation.nlu import Understanding
from evals.rule_eval import Bench, RuleSetup, finished_pairs, make_service, run_sessions, session_pairs
from evals.rule_report import confidence_intervals, write_rule_report
from evals.rule_sim import hdcg, rule_metrics, run_session
from retrieval.catalog import Catalog, Interaction, Item
from retrieval.ranker import Ranker, RankerConfig


def music(n_items: int = 24) -> Catalog:
    """24 (or more) artists over 6 tags; two taste groups in train; test targets inside each group's taste."""
    tags = ["rock", "pop", "jazz", "metal", "indie", "folk"]
    items = [Item(id=str(n), title=f"Artist {n}", attributes={"tag": [tags[n % 6], tags[(n // 6) % 6]]})
             for n in range(n_items)]
    train = [Interaction(user=f"u{u}", item=str(i)) for u in range(8) for i in (range(0, 12, 2) if u % 2 else range(1, 12, 2))]
    test = [Interaction(user=f"u{u}", item=str(12 + u)) for u in range(8)]
    valid = [Interaction(user=f"u{u}", item=str(20 + u % 4)) for u in range(8)]
    return Catalog(name="music", items=items, interactions=train, splits={"train": train, "valid": valid, "test": test})


@pytest.fixture(scope="module")
def bench() -> Bench:
    catalog = music()
    graph = ItemAttributeGraph(catalog, types=("tag",))
    ranker = Ranker.train(catalog, config=RankerConfig(l2=1.0))
    return Bench(catalog, graph, RankerScorer(ranker, graph, PopularityScorer(catalog, graph)))


def test_hdcg_matches_unicorn_formula():
    assert math.isclose(hdcg(1, 1), 1.0)
    assert math.isclose(hdcg(3, 2), 1 / math.log2(5) + (1 / math.log2(4) - 1 / math.log2(5)) / math.log2(3))
    assert hdcg(5, 0) == 0.0


def test_every_session_ends_and_nothing_off_path_is_shown(bench):
    setup = RuleSetup(recommend_below=3, max_questions=14)
    results = run_sessions(bench, setup, session_pairs(bench.catalog, "test"), workers=1)
    assert len(results) == 8
    for r in results:
        assert r.invalid_shown == 0 and r.invalid_ids_proposed == 0
        assert 1 <= r.asks + r.recommends <= 14
        if r.success:
            assert 1 <= r.rank <= 10 and r.turn == r.asks + r.recommends
    metrics = rule_metrics(results)
    assert metrics["sr15"] == 1.0  # 24 items, 14 actions of up to 10 items each: the target is always found
    assert metrics["sr5"] <= metrics["sr10"] <= metrics["sr15"] and 1 <= metrics["at"] <= 15


def test_answers_follow_the_target(bench):
    service = make_service(bench, RuleSetup(recommend_below=1, max_questions=14))
    target = "13"
    attrs = bench.graph.attributes_of(bench.graph.row_of[target])
    result = run_session(service, user="u1", target=target, target_attrs=attrs, seed=3)
    assert result.success and result.opening in {str(a) for a in attrs}


def test_structured_feedback_is_the_same_path_as_text(bench):
    service = make_service(bench, RuleSetup(recommend_below=1))
    session = service.start(user_id="u1")
    first = service.respond_structured(session, Understanding(accepted=[bench.graph.attrs[0]]))
    state = service.state(session)
    assert state.accepted == [bench.graph.attrs[0]] and state.turn == 1
    assert first.action.kind in {"ask", "recommend"} and first.trace.candidates > 0


def test_resume_reads_saved_sessions(bench, tmp_path):
    pairs = session_pairs(bench.catalog, "test")
    saved = tmp_path / "runs.jsonl"
    first = run_sessions(bench, RuleSetup(), pairs[:3], workers=1, results_file=saved)
    seen: list[int] = []
    again = run_sessions(bench, RuleSetup(), pairs, workers=1, results_file=saved, on_progress=seen.append)
    assert seen[0] == 3 and sum(seen) == len(pairs)
    assert [r.as_dict() for r in again[:3]] == [r.as_dict() for r in first]
    assert finished_pairs(saved) == set(pairs)


def test_a_smaller_seeded_sample_is_the_start_of_a_larger_one():
    """Why one results file serves every --limit: the first N pairs of a sample of M > N are the sample of N."""
    splits = {"test": [Interaction(user=f"u{n}", item=str(n % 50)) for n in range(12000)]}
    catalog = Catalog(name="many", items=[Item(id=str(n), title=f"t{n}") for n in range(50)], splits=splits)
    for small, large in ((85, 200), (100, 200), (200, 1000)):
        assert session_pairs(catalog, "test", limit=large, seed=3)[:small] == session_pairs(catalog, "test", limit=small, seed=3)
    assert finished_pairs(None) == set()


def test_parallel_equals_serial(bench):
    pairs = session_pairs(bench.catalog, "test")
    serial = run_sessions(bench, RuleSetup(), pairs, workers=1)
    parallel = run_sessions(bench, RuleSetup(), pairs, workers=2, chunk=2)
    strip = lambda rs: [{k: v for k, v in r.as_dict().items() if k != "latency_s"} for r in rs]  # noqa: E731
    assert strip(serial) == strip(parallel)


def test_report_has_metrics_intervals_and_anchors(bench, tmp_path):
    results = run_sessions(bench, RuleSetup(), session_pairs(bench.catalog, "test"), workers=1)
    out = {"command": "concierge eval rule --dataset lastfm", "date": "today", "dataset": "lastfm", "mode": "graph",
           "split": "test", "limit": None, "seed": 0, "workers": 1, "seconds": 1.0, **rule_metrics(results),
           "ci95": confidence_intervals(results), "setup": {"temperature": 0.1}}
    text = write_rule_report(out, tmp_path / "r.md").read_text(encoding="utf-8")
    assert "| SR@15 |" in text and "| UNICORN | 0.535 |" in text and "Concierge `graph`" in text


def test_llm_mode_goes_through_the_planner_and_never_shows_off_path_ids(bench):
    import json

    from agent.llm import ScriptedChatModel

    catalog = music(96)  # more candidates than one list holds, so the planner has something to decide
    graph = ItemAttributeGraph(catalog, types=("tag",))
    ranker = Ranker.train(catalog, config=RankerConfig(l2=1.0))
    bench = Bench(catalog, graph, RankerScorer(ranker, graph, PopularityScorer(catalog, graph)))
    model = ScriptedChatModel(default=json.dumps({"action": "recommend", "items": [1, 42, 2, 3]}))
    results = run_sessions(bench, RuleSetup(), session_pairs(bench.catalog, "test"), workers=1, model=model,
                           mode="llm", chunk=1)
    # the planner is asked on every turn except when all candidates fit in one list (nothing to decide)
    assert all(r.llm_turns <= r.asks + r.recommends for r in results) and sum(r.llm_turns for r in results) > 0
    assert all(r.llm_calls == r.llm_turns for r in results)
    assert sum(r.invalid_ids_proposed for r in results) > 0 and sum(r.invalid_shown for r in results) == 0
    assert rule_metrics(results)["fallback_rate"] == 0.0


def test_a_row_saved_under_the_counters_old_name_still_loads():
    from evals.rule_sim import SessionResult

    row = SessionResult("u", "t", "o", True, 3, 1, 2, 1, 0, 0, 0, 2, 0.5).as_dict()
    row["invalid_proposed"] = row.pop("invalid_ids_proposed")
    assert SessionResult.from_row(row).invalid_ids_proposed == 2
