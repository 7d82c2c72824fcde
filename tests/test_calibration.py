"""Calibration statistics on a hand-made ReDial-format fixture and a hand-made simulated session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ui.cli import app
from evals.calibration import classify_turn, gaps, load_redial, load_sim_run, sim_dialog, statistics

TINY = Path(__file__).parent / "data" / "redial" / "tiny.jsonl"

# Seeker turns of tests/data/redial/tiny.jsonl, worked out by hand:
#   dialog 1: "I love horror movies like @100"   6 words  preference           (no items shown yet)
#             "Yes I have seen it, it was great"  8 words  reaction             (after @200)
#             "Sounds good, thanks!"              3 words  reaction             (after @300)
#   dialog 2: "hello"                             1 word   neither
#             "Something funny for tonight"       4 words  preference
#             "Not for me"                        3 words  reaction             (after @400 and @500)
# Answered suggestions (suggested = 1, liked 0/1): 200 liked (seen), 300 liked (unseen), 400 not liked (unseen);
# 500 has liked = 2 (did not say) and 100 was the seeker's own mention, so neither counts.
RECORD = {
    "case_id": "c", "seed": 0, "persona": "chatty", "accepted_id": "9",
    "transcript": [
        {"role": "user", "text": "I want a creepy horror film"},
        {"role": "assistant", "text": "Do you want something from the 1980s?", "shown": []},
        {"role": "user", "text": "Yes, horror please"},
        {"role": "assistant", "text": "1. The Shining 2. Alien", "shown": ["7", "4"]},
        {"role": "user", "text": "I have seen that one, not for me"},
        {"role": "assistant", "text": "1. Alien 2. It", "shown": ["4", "9"]},
        {"role": "user", "text": "Perfect, I'll take it"},
    ],
}


def test_human_statistics_match_the_hand_computed_numbers():
    stats = statistics(load_redial(TINY))
    assert stats["dialogs"] == 2 and stats["seeker_turns"] == 6
    assert stats["words_per_turn"]["mean"] == pytest.approx(25 / 6) and stats["words_per_turn"]["median"] == 3.5
    assert stats["turns_per_dialog"]["mean"] == 3.0
    assert stats["preference_share"] == pytest.approx(2 / 6)
    assert stats["reaction_share"] == pytest.approx(3 / 6)
    assert stats["both_share"] == 0.0 and stats["neither_share"] == pytest.approx(1 / 6)
    assert stats["turns_after_items_share"] == pytest.approx(3 / 6) and stats["reaction_share_after_items"] == 1.0
    assert stats["items_suggested"] == 3 and stats["acceptance_rate"] == pytest.approx(2 / 3)
    assert stats["acceptance_rate_unseen"] == pytest.approx(1 / 2)
    assert stats["dialogs_accepting_share"] == pytest.approx(1 / 2)


def test_classifier_needs_items_before_a_reaction():
    assert classify_turn("I have seen it", after_items=False) == (False, False)
    assert classify_turn("I have seen it", after_items=True) == (False, True)
    assert classify_turn("@123 was great, but I prefer comedies", after_items=True) == (True, True)
    assert classify_turn("hi there", after_items=True) == (False, False)


def test_simulated_session_statistics():
    dialog = sim_dialog(RECORD)
    assert dialog.after_items == [False, False, True, True] and dialog.suggested == 3 and dialog.accepted == 1
    stats = statistics([dialog])
    assert stats["words_per_turn"]["mean"] == pytest.approx((6 + 3 + 8 + 4) / 4)
    assert stats["preference_share"] == pytest.approx(2 / 4) and stats["reaction_share"] == pytest.approx(2 / 4)
    assert stats["acceptance_rate"] == pytest.approx(1 / 3) and stats["dialogs_accepting_share"] == 1.0


def test_gaps_are_simulator_minus_human():
    rows = {r["key"]: r for r in gaps({"preference_share": 0.4}, {"preference_share": 0.6})}
    row = rows["preference_share"]
    assert row["gap"] == pytest.approx(0.2) and row["ratio"] == pytest.approx(1.5)
    assert rows["acceptance_rate"]["gap"] is None


def test_a_run_without_transcripts_is_refused(tmp_path):
    run = tmp_path / "rule.jsonl"
    run.write_text(json.dumps({"user": "u1", "target": "3", "success": True}) + "\n")
    with pytest.raises(ValueError, match="without a transcript"):
        load_sim_run(run)


def test_cli_calibrate_writes_the_report_and_one_json_object(tmp_path):
    run = tmp_path / "sim.jsonl"
    run.write_text(json.dumps({**RECORD, "models": {"agent": "scripted", "simulator": "template"}}) + "\n" + '{"torn',
                   encoding="utf-8")
    report = tmp_path / "calibration.md"
    result = CliRunner().invoke(app, ["eval", "calibrate", "--run", str(run), "--redial", str(TINY),
                                      "--report", str(report), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["human"]["seeker_turns"] == 6 and out["simulator"]["dialogs"] == 1
    assert {"gaps", "by_persona", "readings", "report"} <= set(out) and "chatty" in out["by_persona"]
    text = report.read_text(encoding="utf-8")
    assert "| words per seeker turn, mean | 4.167 | 5.25 |" in text and "agent scripted" in text
