"""The deterministic checks of a recommendation lead: each kind caught, true leads let through."""

from __future__ import annotations

from agent.reply_check import check_lead
from agent.state import Action, Attr, ConvState, Recommendation

ITEMS = {"1": ["Animation", "Comedy", "Children", "1990s"], "2": ["Animation", "Comedy", "Fantasy", "2000s"],
         "4": ["Horror", "Sci-Fi", "1970s"]}
YEARS = {"1": "1995", "2": "2001", "4": "1979"}
VOCAB = ["Animation", "Comedy", "Children", "Fantasy", "Horror", "Sci-Fi", "Romance", "1990s", "2000s", "1970s"]
CATALOG_TITLES = {"toy story": "1", "shrek": "2", "alien": "4", "heat": "5"}


def _action(*ids: str) -> Action:
    titles = {"1": "Toy Story (1995)", "2": "Shrek (2001)", "4": "Alien (1979)"}
    return Action(kind="recommend", items=[Recommendation(item_id=i, title=titles[i], reason="") for i in ids])


def _titles_in(text: str) -> list[str]:
    return [i for title, i in CATALOG_TITLES.items() if title in text.lower()]


def _kinds(text: str, action: Action, state: ConvState | None = None) -> list[str]:
    state = state or ConvState(session_id="s")
    return [v.kind for v in check_lead(text, action, state, item_values=ITEMS, vocabulary=VOCAB, years=YEARS,
                                       titles_in=_titles_in)]


def test_a_true_lead_passes():
    state = ConvState(session_id="s", accepted=[Attr(type="genre", value="Comedy")],
                      rejected=[Attr(type="genre", value="Horror")])
    assert _kinds("Since you want comedy and no horror, Toy Story and Shrek are both animated comedies.",
                  _action("1", "2"), state) == []


def test_voice():
    assert _kinds("These fit what the user likes.", _action("1")) == ["voice"]


def test_a_title_not_on_the_list():
    assert _kinds("Toy Story is as much fun as Heat.", _action("1")) == ["foreign_title"]


def test_a_liked_value_stated_as_unwanted_and_the_reverse():
    liked = ConvState(session_id="s", accepted=[Attr(type="genre", value="Comedy")])
    assert "contradiction" in _kinds("Since you dislike comedies, here is Alien.", _action("4"), liked)
    declined = ConvState(session_id="s", rejected=[Attr(type="genre", value="Horror")])
    assert "contradiction" in _kinds("You love horror, so try Toy Story.", _action("1"), declined)
    assert "contradiction" not in _kinds("No horror here: Toy Story is pure fun.", _action("1"), declined)


def test_an_attribute_the_items_do_not_have():
    assert _kinds("Toy Story and Shrek are romance classics.", _action("1", "2")) == ["unsupported_attribute"]
    assert _kinds("Toy Story and Alien are all animation.", _action("1", "4")) == ["unsupported_attribute"]
    assert _kinds("Toy Story and Alien include some animation.", _action("1", "4")) == []


def test_invented_dates_and_comparisons():
    assert _kinds("Shrek, from 2005, is a treat.", _action("2")) == ["invented_fact"]
    assert _kinds("Shrek, from 2001, is a treat.", _action("2")) == []
    assert _kinds("Shrek is a more recent addition to the genre.", _action("2")) == ["invented_fact"]


def test_the_service_shows_the_template_when_the_lead_is_false():
    from agent.llm import ScriptedChatModel
    from agent.policy import PolicyConfig
    from conversation.service import ConversationService, ServiceConfig
    from tests.helpers import tiny_movies

    model = ScriptedChatModel(default="Here are some horror classics from 2012 for you.")
    service = ConversationService(tiny_movies(), model=model,
                                  config=ServiceConfig(policy=PolicyConfig(recommend_below=20)))
    session = service.start()
    result = service.respond(session, "a comedy please")
    assert result.action.kind == "recommend"
    assert "horror" not in result.text and "2012" not in result.text
    assert result.trace.degraded
    fallback = " ".join(str(f) for f in result.trace.fallbacks)
    assert "unsupported_attribute" in fallback and "invented_fact" in fallback
