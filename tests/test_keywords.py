"""Keyword index (KALM4Rec stage 1): stemming, phrases, synonyms, specificity, filters, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import tiny_movies
from retrieval.catalog import Catalog, Item
from retrieval.keywords import Analyzer, KeywordIndex, KeywordIndexError, split_keywords


@pytest.fixture(scope="module")
def index() -> KeywordIndex:
    return KeywordIndex.build(tiny_movies())


def ids(hits) -> list[str]:
    return [h.id for h in hits]


def test_stemming_matches_other_word_forms(index):
    assert ids(index.search("fairy tales"))[:1] == ["2"]
    assert ids(index.search("parodies")) == ["6"]


def test_multi_word_keyword_is_one_token_and_outranks_loose_words():
    analyzer = Analyzer(["stephen king"])
    assert "stephen_king" in analyzer.tokens("A Stephen King novel")
    catalog = Catalog(name="kings", items=[
        Item(id="a", title="A", text="Stephen, a king of nothing", attributes={"tag": ["royalty"]}),
        Item(id="b", title="B", text="Adapted", attributes={"tag": ["stephen king"]}),
        Item(id="c", title="C", text="Unrelated", attributes={"tag": ["other"]}),
    ])
    index = KeywordIndex.build(catalog)
    hits = index.search("stephen king")
    assert ids(hits)[0] == "b"
    assert "stephen king" in hits[0].matched


def test_synonyms_expand_at_lower_weight_and_are_labelled(index):
    hits = index.search("scary")
    assert set(ids(hits)) == {"4", "7"}
    assert any("~ scary" in m for m in hits[0].matched)
    direct = index.search("horror")[0].score
    assert hits[0].score == pytest.approx(direct * index.synonym_weight, rel=1e-5)


def test_hyphens_accents_and_case_fold():
    analyzer = Analyzer()
    assert analyzer.key("Sci-Fi") == analyzer.key("sci fi")
    assert analyzer.tokens("Amélie") == analyzer.tokens("amelie")


def test_rare_keywords_weigh_more_than_common_ones(index):
    catalog = tiny_movies()
    weights = dict(index.item_keywords("1", catalog, top=20))
    # "pixar" is on 2 items, "comedy" on 4: the specific one weighs more for Toy Story.
    assert weights["pixar"] > weights["comedy"]


def test_filters_and_exclusions(index):
    allowed = np.zeros(len(index), dtype=bool)
    allowed[index.row_of["6"]] = True
    assert ids(index.search("funny", allowed=allowed)) == ["6"]
    assert "1" not in ids(index.search("funny", exclude_ids=["1"]))


def test_queries_without_known_words_find_nothing(index):
    assert index.search("the and of") == []
    assert index.search("zzzz qqqq") == []
    assert split_keywords(" a, b ;c\n") == ["a", "b", "c"]


def test_save_and_load_round_trip(index, tmp_path):
    index.save(tmp_path / "kw")
    again = KeywordIndex.load(tmp_path / "kw")
    assert again.fingerprint == index.fingerprint
    for query in ("funny pixar", "stephen king", "scary"):
        assert [(h.id, round(h.score, 5), h.matched) for h in again.search(query)] == [
            (h.id, round(h.score, 5), h.matched) for h in index.search(query)
        ]
    with pytest.raises(KeywordIndexError):
        KeywordIndex.load(tmp_path / "missing")
