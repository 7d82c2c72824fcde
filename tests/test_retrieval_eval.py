"""`concierge eval retrieval` on small real data: both protocols hold out what they must, the report is written."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from evals.retrieval_eval import _read_tags, evaluate_lastfm, movielens_cases, run_retrieval_eval
from evals.retrieval_report import acceptance, write_retrieval_report
from retrieval.catalog import Catalog, Interaction
from retrieval.embeddings import HashingEmbedder
from retrieval.loaders import load_catalog
from tests.helpers import tiny_movies

MOVIELENS = Path(__file__).resolve().parents[1] / "data" / "movielens-latest-small"


@pytest.fixture(scope="module")
def small_movielens(tmp_path_factory) -> Path:
    """The first 40 users of the bundled MovieLens, with the movies they rated and their tags."""
    out = tmp_path_factory.mktemp("ml-small")
    users = {str(u) for u in range(1, 41)}

    def copy(name: str, keep) -> set[str]:
        movies = set()
        with (MOVIELENS / name).open(encoding="utf-8", newline="") as src, (out / name).open("w", encoding="utf-8", newline="") as dst:
            reader = csv.DictReader(src)
            writer = csv.DictWriter(dst, fieldnames=reader.fieldnames)
            writer.writeheader()
            for row in reader:
                if keep(row):
                    writer.writerow(row)
                    movies.add(row.get("movieId", ""))
        return movies

    rated = copy("ratings.csv", lambda r: r["userId"] in users)
    copy("tags.csv", lambda r: r["movieId"] in rated)
    copy("movies.csv", lambda r: r["movieId"] in rated)
    copy("links.csv", lambda r: r["movieId"] in rated)
    return out


@pytest.mark.parametrize("protocol", ["stated", "history"])
def test_cold_start_cases_hold_out_targets(small_movielens, protocol):
    catalog = load_catalog(small_movielens)
    clean, cases, popularity, counts = movielens_cases(catalog, small_movielens, seed=0, protocol=protocol)
    assert cases and {c.split for c in cases} == {"valid", "test"}
    evaluated = {c.user for c in cases}
    for case in cases:
        assert case.targets and case.keywords
        assert not case.targets & case.exclude  # nothing the user liked later is excluded or leaked as seen
    # popularity only counts users who are not evaluated
    assert sum(counts.values()) == sum(1 for r in catalog.interactions if r.user not in evaluated)
    assert len(popularity) == len(catalog)
    assert clean.interactions == () or not list(clean.interactions)


def test_stated_keywords_describe_the_targets(small_movielens):
    catalog = load_catalog(small_movielens)
    _clean, stated, _popularity, _counts = movielens_cases(catalog, small_movielens, seed=0, protocol="stated")
    genres = set(catalog.attribute_counts["genre"])
    written = {(u, m, t) for u, m, t, _ts in _read_tags(small_movielens)}
    for case in stated:
        assert case.keywords
        own, rest = case.keywords[: case.own_tags], case.keywords[case.own_tags:]
        assert all(any((case.user, m, t) in written for m in case.targets) for t in own)
        for keyword in rest:  # no fill-in tag or genre points at a single target
            kind = "genre" if keyword in genres else "tag"
            carriers = [m for m in case.targets if keyword in catalog.items[m].attributes.get(kind, [])]
            assert len(carriers) >= 2, (case.user, keyword)
    assert any(c.own_tags for c in stated)  # the small data has users who tagged their own targets


def test_stated_and_history_share_everything_but_keywords(small_movielens):
    catalog = load_catalog(small_movielens)
    clean_s, stated, pop_s, counts_s = movielens_cases(catalog, small_movielens, seed=0, protocol="stated")
    clean_h, history, pop_h, counts_h = movielens_cases(catalog, small_movielens, seed=0, protocol="history")
    assert [(c.user, c.split, c.targets, c.exclude) for c in stated] == [
        (c.user, c.split, c.targets, c.exclude) for c in history]
    assert (pop_s, counts_s) == (pop_h, counts_h)
    assert clean_s.name == clean_h.name and clean_s.fingerprint() == clean_h.fingerprint()
    # A user's own tag on a target is gone from the catalog unless someone else also put it there.
    leaked = {(c.user, m) for c in stated for m in c.targets}
    tags = _read_tags(small_movielens)
    for user, movie, tag, _ts in tags:
        if (user, movie) in leaked and tag in clean_s.items[movie].attributes.get("tag", []):
            assert any(m == movie and t == tag and (u, m) not in leaked for u, m, t, _ in tags)
    with pytest.raises(ValueError, match="stated.*history"):
        movielens_cases(catalog, small_movielens, protocol="future")


def test_run_and_report(small_movielens, tmp_path):
    result = run_retrieval_eval(movielens=small_movielens, lastfm=tmp_path / "unused", embedder=HashingEmbedder(),
                                data_dir=tmp_path, progress=False, lastfm_catalog=_lastfm_like())
    for key in ("movielens", "movielens_history"):
        for mode in ("keyword", "vector", "hybrid", "popularity"):
            row = result[key][mode]
            assert 0.0 <= row["recall@20"] <= 1.0 and 0.0 <= row["ndcg@10"] <= 1.0
            low, high = row["recall@20_ci95"]
            assert low <= row["recall@20"] <= high
        assert result["details"][key]["protocol"] == ("stated" if key == "movielens" else "history")
    builds = [result["details"][k]["vector_build"] for k in ("movielens", "movielens_history")]
    assert builds[0]["fingerprint"] == builds[1]["fingerprint"] and builds[1]["embedded"] == 0  # one store
    for name in ("ranker", "popularity"):
        assert set(result["lastfm"][name]) >= {"recall@10", "ndcg@10"}
    report = write_retrieval_report(result, tmp_path / "retrieval.md")
    text = report.read_text(encoding="utf-8")
    assert "## MovieLens cold start: stated wants (KALM4Rec protocol)" in text
    assert "## MovieLens cold start: from earlier history" in text
    assert text.index("stated wants (KALM4Rec") < text.index("from earlier history") < text.index("## LastFM ranker")
    assert text.count("| hybrid |") == 4 and "history protocol all three retrievers" in text
    assert set(acceptance(result)) == {"hybrid_recall_at_least_best_single", "all_three_above_popularity",
                                       "ranker_ndcg_at_least_1_5x_popularity"}


def _lastfm_like() -> Catalog:
    """Two tastes with train/valid/test splits: the ranker must beat popularity on it."""
    base = tiny_movies()
    train, valid, test = [], [], []
    for n in range(24):
        liked = ["1", "2", "3"] if n % 2 == 0 else ["4", "7", "5"]
        held = liked[(n // 2) % 3]  # each user holds out a different one of their taste's items
        train += [Interaction(user=f"u{n}", item=i) for i in liked if i != held]
        (valid if n < 12 else test).append(Interaction(user=f"u{n}", item=held))
    train += [Interaction(user=f"p{n}", item="8") for n in range(10)]  # a popular item no taste group likes
    return Catalog(name="lastfm-like", items=base.items.values(), interactions=train,
                   splits={"train": train, "valid": valid, "test": test})


def test_lastfm_ranker_beats_popularity_on_two_tastes():
    result = evaluate_lastfm(_lastfm_like(), progress=False)
    assert result["users"] == 12
    assert result["ranker"]["ndcg@10"] > result["popularity"]["ndcg@10"]
    assert result["l2"] in {g["l2"] for g in result["l2_grid"]}
