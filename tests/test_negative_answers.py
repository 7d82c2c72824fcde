"""A "no" to an attribute: prune removes the items that have it; soft keeps them, ranked lower."""

from __future__ import annotations

import pytest

from agent.policy import CPRPolicy, PolicyConfig
from agent.state import Attr, ConvState
from tests.helpers import tiny_movies

COMEDY = Attr(type="genre", value="Comedy")


def _ranked(negative_answers: str, penalty: float = 0.5) -> list[str]:
    policy = CPRPolicy(tiny_movies(), PolicyConfig(negative_answers=negative_answers, reject_penalty=penalty))
    return policy.ranked_candidates(ConvState(session_id="s", rejected=[COMEDY]), k=8)


def test_prune_removes_every_item_with_a_rejected_attribute():
    assert _ranked("prune") == ["3", "4", "5", "7"]


def test_soft_keeps_them_below_the_items_without_it():
    ranked = _ranked("soft", penalty=2.0)
    assert len(ranked) == 8
    assert ranked[:4] == ["3", "4", "5", "7"] and set(ranked[4:]) == {"1", "2", "6", "8"}


def test_a_small_soft_penalty_only_lowers_the_score():
    ranked = _ranked("soft", penalty=0.05)
    assert ranked[0] == "1"  # the most popular movie, a comedy, still leads: its score fell by less than the gap
    scores = dict(CPRPolicy(tiny_movies(), PolicyConfig(negative_answers="soft", reject_penalty=0.05)).rank(
        ranked, ConvState(session_id="s", rejected=[COMEDY])))
    plain = dict(CPRPolicy(tiny_movies(), PolicyConfig()).rank(ranked))
    assert scores["1"] == pytest.approx(plain["1"] - 0.05) and scores["3"] == pytest.approx(plain["3"])
