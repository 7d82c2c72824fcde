import pytest

from evals.sim_metrics import (abandonment_rate, honoured_share, judge_means, mean_turns, per_success,
                               reflection_honoured, sim_metrics, success_by_turn, success_rate, turns_to_success,
                               wilson_ci)


def _rec(success, turns, abandoned=False, tokens=100, latency=2.0, judge=None, details=()):
    return {"success": success, "turns": turns, "abandoned": abandoned, "tokens": tokens, "latency_s": latency,
            "judge": judge, "reflections": len(details), "reflections_honoured": sum(bool(d["honoured"]) for d in details),
            "reflection_details": list(details), "invalid_ids_shown": 0, "leak_count": 0,
            "outcome": "success" if success else ("abandoned" if abandoned else "max_turns")}


RECORDS = [
    _rec(True, 2, judge={"relevance": 5, "naturalness": 4, "faithfulness": 3},
         details=[{"kind": "want", "honoured": True}]),
    _rec(True, 4, tokens=300, details=[{"kind": "avoid", "honoured": False}, {"kind": "different", "honoured": None}]),
    _rec(False, 3, abandoned=True, judge={"relevance": 1, "naturalness": 2, "faithfulness": 3}),
    _rec(False, 14, tokens=600, latency=10.0),
]


def test_hand_computed():
    assert success_rate(RECORDS) == 0.5
    assert mean_turns(RECORDS) == (2 + 4 + 3 + 14) / 4
    assert turns_to_success(RECORDS) == 3.0
    assert abandonment_rate(RECORDS) == 0.25
    assert success_by_turn(RECORDS, 5) == [0.0, 0.25, 0.25, 0.5, 0.5]
    assert honoured_share(RECORDS) == 0.5  # the unchecked one does not count
    assert judge_means(RECORDS) == {"relevance": 3.0, "naturalness": 3.0, "faithfulness": 3.0}
    assert per_success(RECORDS, "tokens") == (100 + 300 + 100 + 600) / 2
    assert per_success([RECORDS[2]], "tokens") is None
    low, high = wilson_ci(2, 4)
    assert low == pytest.approx(0.1500, abs=1e-4) and high == pytest.approx(0.8500, abs=1e-4)


def test_summary_has_everything():
    m = sim_metrics(RECORDS, max_turn=14)
    assert m["sessions"] == 4 and m["reflections"] == 3 and m["reflections_honoured"] == 1
    assert m["tokens_per_session"] == 275 and m["latency_per_success_s"] == 8.0
    assert len(m["success_by_turn"]) == 14 and m["success_by_turn"][-1] == 0.5


def _attrs(item_id):
    return {"a": {"genre=Horror"}, "b": {"genre=Comedy"}, "c": {"genre=Comedy", "genre=Horror"}}.get(item_id, set())


TURNS = [
    {"turn": 1, "asked": "genre=Horror", "shown": []},
    {"turn": 2, "asked": None, "shown": ["a", "b"]},
    {"turn": 3, "asked": None, "shown": ["b"]},
    {"turn": 4, "asked": None, "shown": ["c"]},
]


def test_reflection_honoured_by_code():
    avoid = {"turn": 2, "kind": "avoid", "attribute": "genre=Horror"}
    assert reflection_honoured(avoid, TURNS, _attrs) is False  # turn 4 shows c, a horror film
    assert reflection_honoured(avoid, TURNS, _attrs, window=1) is True
    assert reflection_honoured({"turn": 1, "kind": "avoid", "attribute": "genre=Horror"}, TURNS, _attrs) is False
    want = {"turn": 2, "kind": "want", "attribute": "genre=Comedy"}
    assert reflection_honoured(want, TURNS, _attrs) is True
    assert reflection_honoured({"turn": 3, "kind": "want", "attribute": "genre=Drama"}, TURNS, _attrs) is False
    different = {"turn": 2, "kind": "different", "attribute": None}
    assert reflection_honoured(different, TURNS, _attrs) is False  # b is shown again on turn 3
    assert reflection_honoured({"turn": 3, "kind": "different", "attribute": None}, TURNS, _attrs) is True
    assert reflection_honoured({"turn": 4, "kind": "different", "attribute": None}, TURNS, _attrs) is None


def test_role_means():
    from evals.sim_metrics import role_means

    rows = [{"tokens_by_role": {"agent": 10, "simulator": 4, "judge": 0}},
            {"tokens_by_role": {"agent": 20, "simulator": 6, "judge": 8}}]
    assert role_means(rows, "tokens_by_role") == {"agent": 15.0, "judge": 4.0, "simulator": 5.0}
