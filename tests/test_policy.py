import math

import numpy as np

from agent.policy import CPRPolicy, PolicyConfig, _binary_entropy, template_reason
from agent.state import Attr, ConvState
from tests.helpers import tiny_movies

CAT = tiny_movies()


def _policy(**kw):
    return CPRPolicy(CAT, PolicyConfig(**kw))


def test_accepted_attributes_restrict_candidates_rejected_remove():
    state = ConvState(session_id="s", accepted=[Attr(type="genre", value="Comedy"), Attr(type="genre", value="Animation")])
    assert sorted(_policy().candidates(state)) == ["1", "2"]
    state.rejected.append(Attr(type="tag", value="pixar"))
    assert _policy().candidates(state) == ["2"]


def test_candidates_fall_back_to_best_partial_match():
    state = ConvState(session_id="s", accepted=[Attr(type="genre", value="Horror"), Attr(type="genre", value="Romance")])
    assert sorted(_policy().candidates(state)) == ["4", "7", "8"]


def test_rank_is_by_popularity():
    ranked = _policy().rank(["8", "1", "4"])
    assert [i for i, _ in ranked] == ["1", "4", "8"]


def test_question_maximises_weighted_entropy():
    policy = _policy(temperature=0.5)
    state = ConvState(session_id="s")
    ids = policy.candidates(state)
    attr = policy.best_question(state, ids)
    rows = policy.graph.rows(ids)
    weights = policy.weights(rows, policy.scorer.scores(state))
    assert np.isclose(weights.sum(), 1.0) and np.all(np.diff(weights[np.argsort(-policy.scorer.scores(state)[rows])]) <= 1e-12)

    def h(a):
        mass = sum(w for i, w in zip(ids, weights) if CAT.items[i].has(a.value))
        return _binary_entropy(mass)

    for other in [Attr(type="genre", value="Horror"), Attr(type="decade", value="1990s"), Attr(type="genre", value="Animation")]:
        assert h(attr) >= h(other) - 1e-9
    assert math.isclose(_binary_entropy(0.5), 1.0)


def test_recommends_once_the_top_list_holds_enough_weight():
    state = ConvState(session_id="s")
    assert _policy(recommend_below=2, recommend_mass=0.99, temperature=1.0).decide(state).kind == "ask"
    decision = _policy(recommend_below=2, recommend_mass=0.5, temperature=0.01).decide(state)
    assert decision.kind == "recommend" and decision.top_mass >= 0.5


def test_legal_attributes_exclude_what_is_known():
    state = ConvState(session_id="s", accepted=[Attr(type="genre", value="Comedy")],
                      rejected=[Attr(type="tag", value="paris")])
    decision = _policy(recommend_below=1, legal_attributes=20).decide(state)
    legal = [a for a, _h in decision.attributes]
    assert decision.kind == "ask" and legal and decision.attribute == legal[0]
    assert Attr(type="genre", value="Comedy") not in legal and Attr(type="tag", value="paris") not in legal
    assert all(h > 0 for _a, h in decision.attributes)


def test_decide_recommends_when_few_remain_or_out_of_questions():
    assert _policy(recommend_below=100).decide(ConvState(session_id="s")).kind == "recommend"
    assert _policy(recommend_below=2).decide(ConvState(session_id="s")).kind == "ask"
    assert _policy(recommend_below=2, max_questions=0).decide(ConvState(session_id="s")).kind == "recommend"


def test_asked_attributes_are_not_asked_again():
    policy = _policy(recommend_below=1)
    state = ConvState(session_id="s")
    first = policy.decide(state).attribute
    state.asked.append(first)
    assert policy.decide(state).attribute != first


def test_template_reason_cites_only_item_attributes():
    state = ConvState(session_id="s", accepted=[Attr(type="genre", value="Comedy")])
    reason = template_reason(CAT, "1", state)
    assert "Comedy" in reason and "pixar" in reason and "Horror" not in reason
