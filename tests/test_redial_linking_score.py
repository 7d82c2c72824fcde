"""The linking score's counting rules on handmade messages (strict and documented)."""

from __future__ import annotations

import json
import random

from evals.redial.linking import Message, half, messages, rates, score, typed_title

BARE = {"a1": "alpha", "a2": "alpha", "a3": "alpha", "b": "beta", "c": "gamma"}
FILM = {"a1": ("alpha", "p"), "a2": ("alpha", "p"), "a3": ("a3",), "b": ("b",), "c": ("c",)}


def _message(text: str, marked, talked_about=()) -> Message:
    return Message("2", text, text, tuple(marked), frozenset(talked_about))


def test_kinds_of_wrong_links():
    m = _message("alpha and beta, also gamma", [(0, 5, "a1"), (10, 14, "b")], talked_about={"a1", "b", "c"})
    c, kinds = score(m, [(0, 5, "a2"), (10, 14, "b"), (21, 26, "c")], BARE, FILM)
    assert kinds == {"a2": "duplicate_entry", "c": "unmarked_talked_about"}
    r = rates(c)
    assert (r["precision"], r["recall"]) == (1 / 3, 1 / 2)
    assert (r["documented_precision"], r["documented_recall"]) == (1.0, 1.0)


def test_other_versions_and_unmarked_links_stay_wrong():
    m = _message("alpha, beta", [(0, 5, "a1")], talked_about={"a1"})
    c, kinds = score(m, [(0, 5, "a3"), (7, 11, "b")], BARE, FILM)
    assert kinds == {"a3": "other_version", "b": "unmarked_other"}
    r = rates(c)
    assert r["documented_precision"] == 0.0 and r["documented_recall"] == 0.0 and r["marked_precision"] == 0.0


def test_markers_are_put_back_with_their_spans(tmp_path):
    dialog = {"conversationId": "7", "movieMentions": {"1": "Alpha  (1999)", "2": "Gone (2001)"},
              "messages": [{"text": "I loved @1 and @3, not @2!"}]}
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(dialog) + "\n", "utf-8")
    [m] = messages(path, {"Alpha (1999)": "x"})
    assert [m.text[s:e].lower() for s, e, _i in m.marked] == ["alpha", "gone"]
    assert [i for *_x, i in m.marked] == ["x", None] and "@3" in m.text and m.talked_about == {"x"}
    assert half(m.dialog) == "odd" and half("10") == "even"
    assert typed_title("The Thing (1982)", random.Random(0)) in {"The Thing", "the thing"}
