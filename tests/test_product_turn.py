"""The default service is the whole agent: reader, linker, tools, ranker, wish search in every turn."""

from __future__ import annotations

import pytest

from agent.session_scorer import SessionScorer
from conversation.app import build_service
from conversation.linker import EntityLinker
from conversation.settings import Settings
from retrieval.embeddings import HashingEmbedder
from tests.helpers import tiny_movies
from tools.retrieval_tools import RetrievalTools


@pytest.fixture()
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", phrase_with_llm=False, read_with_llm=False, _env_file=None)


@pytest.fixture()
def service(settings):
    return build_service(settings, catalog=tiny_movies(), embedder=HashingEmbedder())


def test_default_service_carries_every_part(service):
    assert isinstance(service.linker, EntityLinker)
    assert isinstance(service.tools, RetrievalTools)
    scorer = service.policy.scorer
    assert isinstance(scorer, SessionScorer)
    assert scorer.ranker is not None and scorer.search is not None and scorer._matrix is not None


def test_settings_turn_parts_off(settings):
    off = settings.model_copy(update={"link_entities": False, "collaborative": False, "search_wishes": False,
                                      "content_similarity": False})
    service = build_service(off, catalog=tiny_movies(), embedder=HashingEmbedder())
    assert service.linker is None and service.policy.scorer.ranker is None and service.policy.scorer.search is None


def test_a_liked_title_is_history_and_never_recommended_back(service):
    session = service.start()
    result = service.respond(session, "Something like Toy Story please")
    assert result.action.kind == "recommend"
    shown = [r.item_id for r in result.action.items]
    assert "1" not in shown
    state = service.state(session)
    assert state.liked_items == ["1"]
    assert result.trace.understood["liked_items"] == ["Toy Story (1995)"]
    assert any("like Toy Story (1995)" in r.reason for r in result.action.items)


def test_disliked_and_seen_titles_are_not_recommended(service):
    session = service.start()
    service.respond(session, "I hated Shrek and I have already seen Up")
    state = service.state(session)
    assert state.disliked_items == ["2"] and state.seen_items == ["3"]
    assert not {"2", "3"} & set(service.rank(session, k=8))


def test_free_text_wish_reaches_search_and_its_hits_can_be_recommended(service):
    session = service.start()
    result = service.respond(session, "something set in paris")
    state = service.state(session)
    assert state.wishes == ["set paris"]
    assert result.action.items[0].item_id == "8"  # the least popular movie, found by its tag


def test_observe_reads_both_sides_of_a_dialog(service):
    session = service.start()
    service.observe(session, "I loved Alien (1979)", role="user")
    service.observe(session, "Have you seen The Shining?", role="assistant")
    state = service.state(session)
    assert state.liked_items == ["4"] and "7" in state.shown_items
    ranked = service.rank(session, k=8)
    assert "4" not in ranked and "7" not in ranked and len(ranked) == 6


def test_the_trace_shows_the_ranker_and_search_calls(service):
    session = service.start()
    result = service.respond(session, "I loved Alien, something set in space")
    names = [call.name for call in result.trace.tool_calls]
    assert names == ["rank_candidates", "search_hybrid"]
    assert result.trace.tool_calls[1].arguments["query"] == "set space"


def test_a_person_matches_every_role_they_have():
    from agent.graph import ItemAttributeGraph
    from agent.state import Attr
    from retrieval.catalog import Catalog, Item

    catalog = Catalog(name="people", items=[
        Item(id="1", title="A", attributes={"star": ["Bruce Willis"]}),
        Item(id="2", title="B", attributes={"writer": ["Bruce Willis"]}),
        Item(id="3", title="C", attributes={"star": ["Someone Else"]}),
    ])
    graph = ItemAttributeGraph(catalog, types=("star", "writer"))
    assert sorted(graph.items_with(Attr(type="writer", value="Bruce Willis")).tolist()) == [0, 1]


def test_chat_words_and_typos_are_not_searched(service):
    keywords = service.tools.searcher.keywords
    assert keywords.informative("im horroe ok paris") == ["paris"]


def test_feedback_on_the_last_turn_is_not_sent_to_the_llm_reader(tmp_path):
    from agent.llm import ScriptedChatModel

    settings = Settings(data_dir=tmp_path / "data", phrase_with_llm=False, _env_file=None)
    model = ScriptedChatModel()  # any LLM call would fail the test: nothing is queued
    service = build_service(settings, catalog=tiny_movies(), model=model, embedder=HashingEmbedder())
    session = service.start()
    first = service.respond(session, "I'd like something funny")
    assert first.trace.llm_calls == []
    for text in ("none of those, something else", "seen them all, more please"):
        result = service.respond(session, text)
        assert result.trace.llm_calls == [] and not result.trace.degraded


def test_the_lead_speaks_to_the_person_not_about_them():
    from agent.reply import _checked
    from agent.state import Action

    action = Action(kind="recommend")
    assert _checked("These fit the user's taste for comedy.", action) == "These fit your taste for comedy."
    with pytest.raises(ValueError, match="speaks of the user"):
        _checked("These are comedies, which the user dislikes.", action)
