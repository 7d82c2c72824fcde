"""The EASE ranker: personal scores, attribute boosts and penalties, popularity fallback, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.catalog import Catalog, Interaction, Item
from retrieval.ranker import Ranker, RankerConfig, RankerError
from tests.helpers import tiny_movies


def two_taste_catalog() -> Catalog:
    """Animation fans watch 1-3 together, horror fans 4 and 7; item 1 is the most popular."""
    base = tiny_movies()
    rows = [(f"a{n}", i) for n in range(6) for i in ("1", "2", "3")]
    rows += [(f"h{n}", i) for n in range(4) for i in ("4", "7")]
    rows += [(f"p{n}", "1") for n in range(6)]
    return Catalog(name="two-tastes", items=base.items.values(),
                   interactions=[Interaction(user=u, item=i) for u, i in rows])


@pytest.fixture(scope="module")
def ranker() -> Ranker:
    return Ranker.train(two_taste_catalog(), config=RankerConfig(l2=1.0, neighbors=5))


def test_known_user_gets_co_watched_items_first(ranker):
    catalog = two_taste_catalog()
    ranked = ranker.rank(catalog, history_ids=["4"])
    assert ranked[0].id == "7" and ranked[0].source == "personal"
    assert "4" not in [r.id for r in ranked]  # seen items are excluded by default
    assert ranker.top_for_user(user_id="a0", k=3) == [r.id for r in ranker.rank(catalog, user_id="a0", k=3)]


def test_unknown_user_falls_back_to_popularity(ranker):
    ranked = ranker.rank(two_taste_catalog(), user_id="stranger", k=3)
    assert ranked[0].id == "1" and ranked[0].source == "popularity"


def test_accepted_attributes_raise_and_rejected_lower(ranker):
    catalog = two_taste_catalog()
    boosted = ranker.rank(catalog, ["1", "4", "6"], accepted=["Horror"])
    assert boosted[0].id == "4" and boosted[0].accepted == ("Horror",)
    penalised = ranker.rank(catalog, ["1", "4", "6"], rejected=["Animation"])
    assert penalised[-1].id == "1" and penalised[-1].rejected == ("Animation",)


def test_candidates_outside_the_catalog_are_ignored(ranker):
    assert [r.id for r in ranker.rank(two_taste_catalog(), ["nope", "6"])] == ["6"]


def test_ease_weights_match_the_closed_form():
    catalog = two_taste_catalog()
    ranker = Ranker.train(catalog, config=RankerConfig(l2=1.0, neighbors=0))
    ids = list(catalog.items)
    x = np.zeros((16, len(ids)))
    users = sorted({i.user for i in catalog.interactions})
    for i in catalog.interactions:
        x[users.index(i.user), ids.index(i.item)] = 1
    cols = [ids.index(i) for i in ("1", "2", "3", "4", "7")]
    g = x[:, cols].T @ x[:, cols] + np.eye(5)
    p = np.linalg.inv(g)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0)
    dense = ranker.weights.toarray()[np.ix_(cols, cols)]
    np.testing.assert_allclose(dense, np.where(b > 0, b, 0), rtol=1e-4, atol=1e-6)


def test_save_and_load_check_the_fingerprint(ranker, tmp_path):
    path = ranker.save(tmp_path / "ranker.npz")
    again = Ranker.load(path, fingerprint=ranker.fingerprint)
    catalog = two_taste_catalog()
    assert [r.id for r in again.rank(catalog, user_id="h1")] == [r.id for r in ranker.rank(catalog, user_id="h1")]
    with pytest.raises(RankerError, match="retrain"):
        Ranker.load(path, fingerprint="something-else")
    with pytest.raises(RankerError, match="train-ranker"):
        Ranker.load(tmp_path / "missing.npz")


def test_no_interactions_is_a_clear_error():
    catalog = Catalog(name="empty", items=[Item(id="1", title="One")])
    with pytest.raises(RankerError, match="no usable interactions"):
        Ranker.train(catalog)
