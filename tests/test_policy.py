import math

from agent.policy import PolicyConfig, PopularityPolicy, _binary_entropy, template_reason
from conversation.state import Attr, ConvState
from tests.helpers import tiny_movies

CAT = tiny_movies()


def _policy(**kw):
    return PopularityPolicy(CAT, PolicyConfig(**kw))


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
    policy = _policy()
    state = ConvState(session_id="s")
    ids = policy.candidates(state)
    attr = policy.best_question(state, ids)
    total = sum(policy.scores[i] + 1e-3 for i in ids)
    def h(a):
        mass = sum(policy.scores[i] + 1e-3 for i in ids if CAT.items[i].has(a.value))
        return _binary_entropy(mass / total)
    for other in [Attr(type="genre", value="Horror"), Attr(type="decade", value="1990s"), Attr(type="genre", value="Animation")]:
        assert h(attr) >= h(other) - 1e-12
    assert math.isclose(_binary_entropy(0.5), 1.0)


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
