"""Hybrid search: fusion, attribute filters, exclusions, matched-signal explanations (fake vectors)."""

from __future__ import annotations

import pytest

from retrieval.embeddings import HashingEmbedder
from retrieval.hybrid import (
    AttributeIndex,
    FusionConfig,
    HybridSearcher,
    UnknownAttributeError,
    popularity_prior,
    prior_rerank,
    rrf_fuse,
)
from retrieval.keywords import KeywordIndex
from retrieval.vector import MemoryVectorIndex
from tests.helpers import tiny_movies


@pytest.fixture(scope="module")
def searcher() -> HybridSearcher:
    catalog = tiny_movies()
    return HybridSearcher(catalog, KeywordIndex.build(catalog), MemoryVectorIndex.build(catalog, HashingEmbedder(64)))


def test_rrf_by_hand():
    # The weight-0 list counts for nothing. a: 1/(10+1) = 0.0909; b: 1/(10+2) + 2/(10+1) = 0.2652;
    # c: 2/(10+2) = 0.1667.
    fused = rrf_fuse([(["a", "b"], 1.0), (["b", "a", "c"], 0.0), (["b", "c"], 2.0)], rrf_k=10)
    assert list(fused) == ["b", "c", "a"]
    assert fused["b"] == pytest.approx(1 / 12 + 2 / 11)
    assert fused["a"] == pytest.approx(1 / 11)
    assert fused["c"] == pytest.approx(2 / 12)


def test_prior_rerank_by_hand():
    prior = {"x": 0.0, "y": 1.0}
    # weight 0.5: x = 0.5 * 1.0 + 0.5 * 0 = 0.5; y = 0.5 * (2/4) + 0.5 * 1 = 0.75.
    assert prior_rerank(["x", "y"], [4.0, 2.0], prior, 0.5) == [("y", 0.75), ("x", 0.5)]
    assert [i for i, _ in prior_rerank(["x", "y"], [4.0, 2.0], prior, 0.0)] == ["x", "y"]
    assert list(popularity_prior({"a": 0.0, "b": 9.0}, ["a", "b"])) == [0.0, 1.0]


def test_hits_say_which_signals_matched(searcher):
    hits = searcher.search("funny, pixar", k=3)
    top = hits[0]
    assert top.id == "1"
    assert "keyword" in top.signals and "vector" in top.signals
    assert {"funny", "pixar"} <= set(top.matched_keywords)
    assert "matches funny" in top.explain()


def test_query_words_equal_to_attribute_values_are_reported(searcher):
    hit = searcher.search("horror", k=1, mode="keyword")[0]
    assert hit.matched_attributes == ("Horror",)


def test_must_have_and_must_not_filter_every_mode(searcher):
    for mode in ("keyword", "vector", "hybrid"):
        hits = searcher.search("funny", k=8, must_have=["comedy"], must_not=["Animation"], mode=mode)
        assert hits and {h.id for h in hits} <= {"6", "8"}, mode
        assert all("Comedy" in h.matched_attributes for h in hits)


def test_excluded_ids_never_come_back(searcher):
    for mode in ("keyword", "vector", "hybrid"):
        assert "1" not in {h.id for h in searcher.search("funny pixar", k=8, exclude_ids=["1"], mode=mode)}


def test_unknown_attribute_names_the_closest_valid_ones(searcher):
    with pytest.raises(UnknownAttributeError) as caught:
        searcher.search("funny", must_have=["comdy"])
    assert caught.value.unknown == {"comdy": ["Comedy"]}
    assert "closest: Comedy" in str(caught.value)


def test_fusion_weights_move_the_order(searcher):
    keyword_only = [h.id for h in searcher.search("creepy space", k=3, mode="keyword")]
    heavy = [h.id for h in searcher.search("creepy space", k=3, fusion=FusionConfig(vector_weight=0.0))]
    assert heavy == keyword_only


def test_popularity_prior_reorders_within_the_pool():
    catalog = tiny_movies()
    searcher = HybridSearcher(catalog, KeywordIndex.build(catalog))
    plain = [h.id for h in searcher.search("comedy", k=4, mode="keyword")]
    popular = [h.id for h in searcher.search("comedy", k=4, mode="keyword", fusion=FusionConfig(keyword_prior=0.9))]
    assert sorted(plain) == sorted(popular)
    assert popular == sorted(popular, key=lambda i: -catalog.popularity[i])
    with pytest.raises(ValueError, match="no vector index"):
        searcher.search("comedy", mode="hybrid")


def test_filter_orders_by_popularity_and_respects_candidates(searcher):
    assert searcher.filter(must_have=["Comedy"]) == ["1", "2", "6", "8"]
    assert searcher.filter(must_have=["Comedy"], candidate_ids=["8", "6", "4"]) == ["6", "8"]
    assert AttributeIndex(tiny_movies()).closest("1980")[0] == "1980s"


def test_vector_query_is_shaped_like_an_item_document():
    from retrieval.hybrid import value_kinds, vector_query_text

    kinds = value_kinds(tiny_movies())
    assert kinds["comedy"] == "genre" and kinds["pixar"] == "tag"
    text = vector_query_text(["pixar", "Comedy", "talking animals"], kinds)
    assert text == "pixar, Comedy, talking animals. tag: pixar. genre: Comedy."
    assert vector_query_text(["something light and fun"], kinds) == "something light and fun"
