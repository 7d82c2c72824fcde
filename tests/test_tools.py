"""Typed retrieval tools: data plus one observation line, only catalog ids, failures as observations."""

from __future__ import annotations

import pytest

from agent.llm import ToolSpec
from retrieval.embeddings import HashingEmbedder
from retrieval.hybrid import HybridSearcher
from retrieval.keywords import KeywordIndex
from retrieval.ranker import Ranker, RankerConfig
from retrieval.vector import MemoryVectorIndex
from tests.helpers import tiny_movies
from tools.retrieval_tools import RetrievalTools, tool_specs

NAMES = ["search_keywords", "search_semantic", "search_hybrid", "filter_by_attributes", "rank_candidates",
         "get_item_details", "list_attributes"]


@pytest.fixture(scope="module")
def tools() -> RetrievalTools:
    catalog = tiny_movies()
    searcher = HybridSearcher(catalog, KeywordIndex.build(catalog), MemoryVectorIndex.build(catalog, HashingEmbedder(64)))
    return RetrievalTools(catalog, searcher, Ranker.train(catalog, config=RankerConfig(l2=1.0)))


def test_every_tool_is_listed_with_a_one_line_description(tools):
    listed = tools.tools()
    assert [t.name for t in listed] == NAMES
    assert all(t.description and "\n" not in t.description for t in listed)


@pytest.mark.parametrize("name", ["search_keywords", "search_semantic", "search_hybrid"])
def test_search_tools_return_catalog_ids_and_one_observation_line(tools, name):
    result = tools.call(name, {"query": "funny pixar", "k": 3})
    assert result.ok and result.tool == name
    assert result.ids and set(result.ids) <= set(tools.catalog.items)
    assert "\n" not in result.observation and "Toy Story" in result.observation
    assert [h["id"] for h in result.data["hits"]] == result.ids


def test_empty_query_and_out_of_range_k_are_validation_observations(tools):
    empty = tools.search_hybrid(query="   ")
    assert not empty.ok and "query" in empty.observation and "at least 1 character" in empty.observation
    big = tools.call("search_keywords", {"query": "funny", "k": 1000})
    assert not big.ok and "k: Input should be less than or equal to 100" in big.observation
    extra = tools.call("search_keywords", {"query": "funny", "colour": "red"})
    assert not extra.ok and "colour" in extra.observation


def test_unknown_attribute_lists_the_closest_valid_ones(tools):
    result = tools.search_hybrid(query="funny", must_have=["comdy"])
    assert not result.ok and result.ids == []
    assert "closest: Comedy" in result.observation
    assert tools.filter_by_attributes(must_have=["Horor"]).data == {"unknown": {"Horor": ["Horror"]}}


def test_filter_rank_details_and_attributes(tools):
    kept = tools.filter_by_attributes(must_have=["comedy"], must_not=["animation"])
    assert kept.ok and kept.ids == ["6", "8"]
    ranked = tools.rank_candidates(candidate_ids=["8", "6", "missing"], accepted=["Romance"], k=2)
    assert ranked.ok and ranked.ids == ["8", "6"] and "ignored 1 unknown ids" in ranked.observation
    details = tools.get_item_details(item_ids=["7", "nope"])
    assert details.ids == ["7"] and "unknown ids: nope" in details.observation
    attributes = tools.list_attributes(kind="genre", candidate_ids=["1", "2"])
    assert attributes.data["values"][0] == {"value": "Animation", "type": "genre", "count": 2}
    assert not tools.list_attributes(kind="colour").ok


def test_failures_are_observations_not_exceptions(tools):
    assert not tools.rank_candidates(candidate_ids=["x", "y"]).ok
    assert not tools.filter_by_attributes().ok
    assert not tools.call("no_such_tool").ok

    class Broken:
        def search(self, *args, **kwargs):
            raise RuntimeError("index file vanished")

    broken = RetrievalTools(tools.catalog, Broken())  # type: ignore[arg-type]
    result = broken.search_hybrid(query="funny")
    assert not result.ok and "RuntimeError: index file vanished" in result.observation


def test_planner_specs_are_tool_specs_with_json_schemas(tools):
    specs = tool_specs(tools)
    assert [s.name for s in specs] == NAMES and all(isinstance(s, ToolSpec) for s in specs)
    hybrid = next(s for s in specs if s.name == "search_hybrid")
    assert hybrid.parameters["required"] == ["query"]
    assert hybrid.parameters["properties"]["k"]["maximum"] == 100
    assert hybrid.parameters["additionalProperties"] is False
    assert [s.name for s in tool_specs(tools, ["get_item_details"])] == ["get_item_details"]
