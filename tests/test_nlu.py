from conversation.nlu import Lexicon, understand
from agent.state import Attr, ConvState
from tests.helpers import tiny_movies

LEX = Lexicon.from_catalog(tiny_movies())


def _u(text, **state):
    return understand(text, ConvState(session_id="s", **state), LEX)


def test_everyday_words_map_to_genres():
    u = _u("I'd like a funny animated movie")
    assert Attr(type="genre", value="Comedy") in u.accepted
    assert Attr(type="genre", value="Animation") in u.accepted
    assert not u.rejected


def test_negation_rejects_within_its_clause_only():
    u = _u("something scary, but not from the 80s")
    assert u.accepted == [Attr(type="genre", value="Horror")]
    assert u.rejected == [Attr(type="decade", value="1980s")]


def test_anything_but_is_a_negation():
    u = _u("anything but horror")
    assert u.rejected == [Attr(type="genre", value="Horror")]
    assert not u.accepted


def test_multiword_tag_and_longest_match():
    lexicon = Lexicon.from_catalog(tiny_movies(), min_tag_items=1)
    u = understand("a fairy tale please", ConvState(session_id="s"), lexicon)
    assert u.accepted == [Attr(type="tag", value="fairy tale")]


def test_rare_tags_are_not_matched_by_default():
    assert not _u("a fairy tale please").accepted


def test_yes_no_skip_answer_the_last_question():
    asked = Attr(type="decade", value="1990s")
    assert _u("yes please", last_action="ask", last_asked=asked).accepted == [asked]
    assert _u("nope", last_action="ask", last_asked=asked).rejected == [asked]
    assert _u("doesn't matter", last_action="ask", last_asked=asked).skip_asked


def test_reject_shown_after_recommendation():
    assert _u("none of these", last_action="recommend").reject_shown
    assert not _u("none of these", last_action="ask").reject_shown


def test_text_without_attributes_becomes_a_wish():
    u = _u("¿Tienes algo para esta noche?")
    assert u.wishes and not u.accepted and not u.rejected


def test_stopwords_alone_match_nothing():
    assert not _u("a movie please").accepted


def test_a_negation_after_what_it_negates():
    for text in ("comedies are not my thing", "comedy isn't for me", "funny films are not really my style"):
        u = understand(text, ConvState(session_id="s"), LEX)
        assert u.accepted == [] and [a.value for a in u.rejected] == ["Comedy"], text
    u = understand("comedies are not my thing, give me animation", ConvState(session_id="s"), LEX)
    assert [a.value for a in u.rejected] == ["Comedy"] and [a.value for a in u.accepted] == ["Animation"]


def test_said_both_ways_the_dislike_wins():
    u = understand("no comedy, I can't stand funny films", ConvState(session_id="s"), LEX)
    assert [a.value for a in u.rejected] == ["Comedy"] and u.accepted == []
