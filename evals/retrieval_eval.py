"""`concierge eval retrieval`: cold-start retrieval quality on MovieLens and ranker quality on LastFM.

MovieLens cold start, two protocols on the same users, time cut, targets (movies liked after the cut)
and cleaned catalog. "stated" (KALM4Rec-style, the primary one): the keywords describe the target set as
a whole, as a cold-start user saying what they want now (their own tags on targets, tags shared by at
least 2 targets, the targets' most over-represented genres). "history" (harder): the keywords come from
the first half of the user's liked movies. Keyword, vector, hybrid and popularity retrieval are scored on
Recall@20 / NDCG@10; each protocol tunes its fusion weights on its own validation half of the users.

LastFM (UNICORN split): the ranker is trained on `review_dict_train`, its l2 is tuned on `valid`, and it is
scored on `test` (Recall@10 / NDCG@10) against train popularity. The protocol text is in the report.
"""

from __future__ import annotations

import csv
import math
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any


from evals.metrics import ndcg_at_k, recall_at_k
from evals.progress import progress_bar
from evals.stats import bootstrap_ci
from retrieval.catalog import Catalog, Item
from retrieval.embeddings import Embedder
from retrieval.hybrid import FusionConfig, HybridSearcher, prior_rerank, rrf_fuse
from retrieval.keywords import KeywordIndex
from retrieval.loaders import load_catalog
from retrieval.ranker import Ranker, RankerConfig
from retrieval.vector import VectorStore

COMMAND = "concierge eval retrieval"
_ci = partial(bootstrap_ci, rounds=1000, tails=(2.5, 97.5), empty=(0.0, 0.0))  # 95%, as the reports were made
POSITIVE = 4.0
PRIOR_GRID = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9)
WEIGHT_GRID = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0)
RRF_GRID = (10.0, 30.0, 60.0)
L2_GRID = (50.0, 100.0, 200.0, 500.0, 1000.0)
PROTOCOLS = ("stated", "history")


@dataclass
class ColdStartCase:
    """One held-out MovieLens user: the keywords they give, what they already saw, what they liked later."""

    user: str
    split: str
    keywords: list[str]
    own_tags: int
    exclude: set[str] = field(default_factory=set)
    targets: set[str] = field(default_factory=set)


def _read_tags(folder: Path) -> list[tuple[str, str, str, int]]:
    with (folder / "tags.csv").open(encoding="utf-8", newline="") as src:
        return [(r["userId"], r["movieId"], r["tag"].strip().lower(), int(r["timestamp"]))
                for r in csv.DictReader(src) if r["tag"].strip()]


def movielens_cases(catalog: Catalog, folder: Path, *, seed: int = 0, max_tags: int = 3, max_genres: int = 2,
                    min_positives: int = 10, protocol: str = "stated",
                    ) -> tuple[Catalog, list[ColdStartCase], list[str], dict[str, float]]:
    """Cases of one protocol, the catalog without users' tags on their own targets, and outsider popularity."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: use 'stated' or 'history'")
    tags = _read_tags(folder)
    rated: dict[str, list[tuple[int, str, float]]] = defaultdict(list)
    for r in catalog.interactions:
        rated[r.user].append((r.timestamp or 0, r.item, r.rating or 0.0))
    genre_share = {g: n / len(catalog) for g, n in catalog.attribute_counts.get("genre", Counter()).items()}
    tag_df = catalog.attribute_counts.get("tag", Counter())
    own: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for user, movie, tag, ts in tags:
        own[user].append((movie, tag, ts))
    cases = []
    for user in sorted(rated, key=int):
        rows = sorted(rated[user])
        positives = [r for r in rows if r[2] >= POSITIVE]
        if len(positives) < min_positives:
            continue
        cut = positives[len(positives) // 2 - 1][0]
        profile = [m for ts, m, rating in positives if ts <= cut]
        targets = {m for ts, m, rating in positives if ts > cut}
        if not targets:
            continue
        described, usable = _described(protocol, own.get(user, []), cut, profile, targets)
        chosen = _own_tags(usable, set(genre_share), max_tags)
        n_own = len(chosen)
        chosen += _profile_tags(catalog, described, tag_df, set(chosen), max_tags - n_own)
        keywords = chosen + _top_genres(catalog, described, genre_share, max_genres)
        seen = {m for ts, m, _rating in rows if ts <= cut}
        cases.append(ColdStartCase(user, "", keywords, n_own, seen, targets))
    random.Random(seed).shuffle(cases)
    for n, case in enumerate(cases):
        case.split = "valid" if n < len(cases) // 2 else "test"
    cases.sort(key=lambda c: (c.split, int(c.user)))
    evaluated = {c.user for c in cases}
    # Every tag application of an evaluated user on one of their targets goes, whatever the protocol: in
    # "stated" these are keywords, and a keyword must not find a target through the user's own application.
    leaked = {(c.user, m) for c in cases for m in c.targets}
    clean = _without_tags(catalog, tags, leaked)
    counts = Counter(r.item for r in catalog.interactions if r.user not in evaluated)
    popularity = sorted(catalog.items, key=lambda i: (-counts.get(i, 0), int(i) if i.isdigit() else 0, i))
    return clean, cases, popularity, {i: float(counts.get(i, 0)) for i in catalog.items}


def _described(protocol: str, applied: list[tuple[str, str, int]], cut: int, profile: list[str], targets: set[str],
               ) -> tuple[list[str], list[tuple[str, int]]]:
    """The one protocol difference: which movies the keywords describe, and which own tags may be used."""
    if protocol == "stated":
        # A cold-start user saying what they want now: their tags on the wanted movies, at any time.
        return sorted(targets), [(tag, ts) for movie, tag, ts in applied if movie in targets]
    return profile, [(tag, ts) for movie, tag, ts in applied if ts <= cut and movie not in targets]


def _own_tags(usable: list[tuple[str, int]], genres: set[str], n: int) -> list[str]:
    """The user's own (tag, timestamp) applications as keywords: most used first, then earliest, no genre names."""
    count = Counter(tag for tag, _ts in usable)
    first = {}
    for tag, ts in sorted(usable, key=lambda p: p[1]):
        first.setdefault(tag, ts)
    lowered = {g.lower() for g in genres}
    ranked = sorted((t for t in count if t not in lowered), key=lambda t: (-count[t], first[t], t))
    return ranked[:n]


def _profile_tags(catalog: Catalog, movies: Sequence[str], df: Counter, taken: set[str], n: int) -> list[str]:
    """Fill-in keywords: the catalog tags most specific to `movies` (TF-IDF), carried by at least 2 of them."""
    if n <= 0:
        return []
    tf = Counter(t for m in movies for t in catalog.items[m].attributes.get("tag", []))
    score = {t: c * math.log(len(catalog) / df[t]) for t, c in tf.items() if t not in taken and c >= 2}
    return sorted(score, key=lambda t: (-score[t], t))[:n]


def _top_genres(catalog: Catalog, movies: Sequence[str], share: dict[str, float], n: int) -> list[str]:
    """Genres most over-represented among `movies` (lift over the catalog), on at least 2 of them."""
    count = Counter(g for m in movies for g in catalog.items[m].attributes.get("genre", []))
    lift = {g: (c / len(movies)) / share[g] for g, c in count.items() if c >= 2}
    return sorted(lift, key=lambda g: (-lift[g], -count[g], g))[:n]


def _without_tags(catalog: Catalog, tags: list[tuple[str, str, str, int]], leaked: set[tuple[str, str]]) -> Catalog:
    """The catalog with tags removed where only an evaluated user put them on one of their own targets."""
    kept: dict[str, set[str]] = defaultdict(set)
    for user, movie, tag, _ts in tags:
        if (user, movie) not in leaked:
            kept[movie].add(tag)
    items = []
    for item in catalog.items.values():
        old = item.attributes.get("tag", [])
        new = sorted(kept.get(item.id, set()))
        if old == new:
            items.append(item)
            continue
        attributes = {k: v for k, v in item.attributes.items() if k != "tag"} | ({"tag": new} if new else {})
        genres = item.attributes.get("genre", [])
        text = f"{item.title} is a {', '.join(g.lower() for g in genres) or 'untyped'} movie"
        text += f", tagged {', '.join(new[:10])}." if new else "."
        keywords = [k for k in item.keywords if k in {g.lower() for g in genres} or k in new]
        items.append(Item(id=item.id, title=item.title, text=text, attributes=attributes, keywords=keywords))
    return Catalog(name=_cold_name(catalog), items=items, interactions=(), source=catalog.source)


def _cold_name(catalog: Catalog) -> str:
    return f"{catalog.name}-coldstart"


def _scores(ranked: dict[str, list[list[str]]], cases: Sequence[ColdStartCase]) -> dict[str, dict[str, Any]]:
    out = {}
    for method, lists in ranked.items():
        recall = [recall_at_k(r, c.targets, 20) for r, c in zip(lists, cases, strict=True)]
        ndcg = [ndcg_at_k(r, c.targets, 10) for r, c in zip(lists, cases, strict=True)]
        out[method] = {"recall@20": statistics.fmean(recall), "ndcg@10": statistics.fmean(ndcg),
                       "per_user_recall@20": recall, "per_user_ndcg@10": ndcg}
    return out


Pools = dict[str, list[tuple[list[str], list[float]]]]


def cold_start_store(data_dir: Path, catalog: Catalog, embedder: Embedder) -> Path:
    """The vector store folder of the cleaned catalog: one for both protocols, whose cleaning is identical."""
    return Path(data_dir) / "indexes" / _cold_name(catalog) / f"vectors-{embedder.name}"


def evaluate_movielens(catalog: Catalog, folder: Path, embedder: Embedder, *, data_dir: Path, seed: int = 0,
                       protocol: str = "stated", progress: bool = True, store: VectorStore | None = None,
                       ) -> dict[str, Any]:
    """Run one cold-start protocol, every weight picked on its validation users; `store` reuses an open one."""
    if store is None:
        with VectorStore(cold_start_store(data_dir, catalog, embedder), embedder) as opened:
            return evaluate_movielens(catalog, folder, embedder, data_dir=data_dir, seed=seed, protocol=protocol,
                                      progress=progress, store=opened)
    clean, cases, popularity, counts = movielens_cases(catalog, folder, seed=seed, protocol=protocol)
    started = time.perf_counter()
    # Same cleaned catalog for both protocols, so the second protocol's ensure embeds nothing.
    build = store.ensure(clean, progress=progress_bar if progress else None)
    searcher = HybridSearcher(clean, KeywordIndex.build(clean), store, popularity=counts)
    pools = _pools(searcher, cases, progress, f"MovieLens {protocol}-protocol users")
    valid = [n for n, c in enumerate(cases) if c.split == "valid"]
    test = [n for n, c in enumerate(cases) if c.split == "test"]
    best = _tune(searcher, pools, cases, valid)
    result: dict[str, Any] = {
        "protocol": protocol, "users": {"valid": len(valid), "test": len(test)}, "seed": seed, "fusion": asdict(best),
        "vector_build": {"embedded": build.embedded, "seconds": round(build.seconds, 1), "skipped": build.skipped,
                         "fingerprint": build.fingerprint}}
    pure = replace(best, keyword_prior=0.0, vector_prior=0.0)
    for split, rows in (("valid", valid), ("test", test)):
        ranked = {mode: [_ranked(searcher, pools, n, best, mode) for n in rows] for mode in ("keyword", "vector", "hybrid")}
        ranked |= {f"{mode}_pure": [_ranked(searcher, pools, n, pure, mode) for n in rows]
                   for mode in ("keyword", "vector", "hybrid")}
        ranked["popularity"] = [[i for i in popularity if i not in cases[n].exclude][:20] for n in rows]
        result[split] = _scores(ranked, [cases[n] for n in rows])
    result["live_agreement"] = _live_agreement(searcher, pools, cases, test, best)
    taggers = [i for i, n in enumerate(test) if cases[n].own_tags > 0]
    result["test_own_taggers"] = {m: {"users": len(taggers), "recall@20": _mean_at(result["test"][m], taggers)}
                                  for m in result["test"]}
    result["keywords_per_user"] = statistics.fmean(len(c.keywords) for c in cases)
    result["targets_per_user"] = statistics.fmean(len(c.targets) for c in cases)
    result["examples"] = [{"user": cases[n].user, "keywords": cases[n].keywords, "targets": len(cases[n].targets)}
                          for n in test[:5]]
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _live_agreement(searcher: HybridSearcher, pools: Pools, cases: Sequence[ColdStartCase], rows: list[int],
                    fusion: FusionConfig) -> dict[str, float]:
    """Share of users for whom `searcher.search` returns exactly the cached-pool ranking used for tuning."""
    out = {}
    for mode in ("keyword", "vector", "hybrid"):
        same = []
        for n in rows:
            hits = searcher.search(cases[n].keywords, k=20, mode=mode, fusion=fusion, exclude_ids=cases[n].exclude)
            same.append([h.id for h in hits] == _ranked(searcher, pools, n, fusion, mode))
        out[mode] = statistics.fmean(float(s) for s in same) if same else 0.0
    return out


def _pools(searcher: HybridSearcher, cases: Sequence[ColdStartCase], progress: bool, label: str) -> Pools:
    """Per user, each retriever's candidate pool with its raw scores (BM25, cosine), before any prior."""
    raw = FusionConfig(keyword_prior=0.0, vector_prior=0.0)
    pools: Pools = {"keyword": [], "vector": []}
    with progress_bar(len(cases), label, show=progress) as advance:
        for case in cases:
            for mode in ("keyword", "vector"):
                hits = searcher.search(case.keywords, k=raw.pool, mode=mode, exclude_ids=case.exclude, fusion=raw)
                scores = [h.keyword_score if mode == "keyword" else (h.vector_score or 0.0) for h in hits]
                pools[mode].append(([h.id for h in hits], scores))
            advance(1)
    return pools


def _ranked(searcher: HybridSearcher, pools: Pools, n: int, fusion: FusionConfig, mode: str) -> list[str]:
    """What `searcher.search(mode=..., fusion=...)` returns, recomputed from the cached pools."""
    lists = {}
    for name, weight in (("keyword", fusion.keyword_prior), ("vector", fusion.vector_prior)):
        ids, scores = pools[name][n]
        lists[name] = [i for i, _s in prior_rerank(ids, scores, searcher.prior, weight, row_of=searcher.attributes.row_of)]
    if mode != "hybrid":
        return lists[mode][:20]
    fused = rrf_fuse([(lists["keyword"][: fusion.depth], fusion.keyword_weight),
                      (lists["vector"][: fusion.depth], fusion.vector_weight)], rrf_k=fusion.rrf_k)
    return list(fused)[:20]


def _tune(searcher: HybridSearcher, pools: Pools, cases: Sequence[ColdStartCase], rows: list[int]) -> FusionConfig:
    """Priors per retriever first (best own Recall@20), then the fusion weights, all on validation users."""

    def recall(fusion: FusionConfig, mode: str) -> float:
        return statistics.fmean(recall_at_k(_ranked(searcher, pools, n, fusion, mode), cases[n].targets, 20) for n in rows)

    base = FusionConfig()
    kw = max(PRIOR_GRID, key=lambda a: (recall(replace(base, keyword_prior=a), "keyword"), -a))
    vec = max(PRIOR_GRID, key=lambda a: (recall(replace(base, vector_prior=a), "vector"), -a))
    base = replace(base, keyword_prior=kw, vector_prior=vec)
    grid = [replace(base, vector_weight=w, rrf_k=r) for r in RRF_GRID for w in WEIGHT_GRID]
    return max(grid, key=lambda f: (recall(f, "hybrid"), -abs(f.vector_weight - 1.0), f.rrf_k))


def _mean_at(scores: dict[str, Any], rows: list[int]) -> float:
    values = [scores["per_user_recall@20"][i] for i in rows]
    return statistics.fmean(values) if values else 0.0


def _grouped(rows: Sequence[Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        out[r.user].add(r.item)
    return out


def evaluate_lastfm(catalog: Catalog, *, progress: bool = True) -> dict[str, Any]:
    """Ranker vs popularity on UNICORN LastFM: train on train, tune l2 on valid, report on test."""
    train, valid, test = (_grouped(catalog.splits[s]) for s in ("train", "valid", "test"))
    grid = []
    models: dict[float, Ranker] = {}
    with progress_bar(len(L2_GRID), "LastFM ranker: l2 grid on valid", show=progress) as advance:
        for l2 in L2_GRID:
            model = Ranker.train(catalog, interactions=catalog.splits["train"], config=RankerConfig(l2=l2))
            models[l2] = model
            ndcg = statistics.fmean(ndcg_at_k(model.top_for_user(user_id=u, k=10), rel, 10) for u, rel in valid.items())
            grid.append({"l2": l2, "valid_ndcg@10": ndcg})
            advance(1)
    best = max(grid, key=lambda g: g["valid_ndcg@10"])
    model = models[best["l2"]]
    popularity = sorted(catalog.items, key=lambda i: (-catalog.popularity[i], int(i)))
    ranker_lists, pop_lists, targets = [], [], []
    for user, rel in sorted(test.items(), key=lambda p: int(p[0]) if p[0].isdigit() else 0):
        known = train.get(user, set()) | valid.get(user, set())
        ranker_lists.append(model.top_for_user(user_id=user, k=10, exclude_ids=known))
        pop_lists.append([i for i in popularity if i not in known][:10])
        targets.append(rel)
    out: dict[str, Any] = {"users": len(targets), "pairs": sum(len(t) for t in targets), "l2_grid": grid,
                           "l2": best["l2"], "train_seconds": model.meta.get("train_seconds")}
    for name, lists in (("ranker", ranker_lists), ("popularity", pop_lists)):
        recall = [recall_at_k(r, t, 10) for r, t in zip(lists, targets, strict=True)]
        ndcg = [ndcg_at_k(r, t, 10) for r, t in zip(lists, targets, strict=True)]
        out[name] = {"recall@10": statistics.fmean(recall), "ndcg@10": statistics.fmean(ndcg),
                     "per_user_recall@10": recall, "per_user_ndcg@10": ndcg}
    return out


def run_retrieval_eval(*, movielens: Path, lastfm: Path, embedder: Embedder, data_dir: Path, seed: int = 0,
                       progress: bool = True, lastfm_catalog: Catalog | None = None) -> dict[str, Any]:
    """Both evaluations; the JSON document (movielens.* "stated", movielens_history.*, lastfm.*).
    `lastfm_catalog` replaces loading `lastfm` (any catalog with train/valid/test splits)."""
    catalog = load_catalog(movielens)
    with VectorStore(cold_start_store(data_dir, catalog, embedder), embedder) as store:
        ml = {p: evaluate_movielens(catalog, Path(movielens), embedder, data_dir=data_dir, seed=seed, protocol=p,
                                    progress=progress, store=store) for p in PROTOCOLS}
    lf = evaluate_lastfm(lastfm_catalog or load_catalog(lastfm), progress=progress)
    summary: dict[str, Any] = {
        "command": COMMAND,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "embedder": embedder.name,
        "movielens": _movielens_summary(ml["stated"], seed),
        "movielens_history": _movielens_summary(ml["history"], seed),
        "lastfm": {m: {k: lf[m][k] for k in ("recall@10", "ndcg@10")} for m in ("ranker", "popularity")},
    }
    for m in summary["lastfm"]:
        summary["lastfm"][m]["ndcg@10_ci95"] = _ci(lf[m]["per_user_ndcg@10"], seed=seed)
    summary["details"] = {"movielens": _strip(ml["stated"]), "movielens_history": _strip(ml["history"]),
                          "lastfm": _strip(lf)}
    return summary


def _movielens_summary(ml: dict[str, Any], seed: int) -> dict[str, Any]:
    """Test-user Recall@20 (with bootstrap CI) and NDCG@10 per method of one protocol, and each retriever's
    paired per-user gain over popularity (bootstrap CI: "clearly above" means its low end is above 0)."""
    test = ml["test"]
    out = {m: {"recall@20": test[m]["recall@20"], "ndcg@10": test[m]["ndcg@10"],
               "recall@20_ci95": _ci(test[m]["per_user_recall@20"], seed=seed)}
           for m in ("keyword", "vector", "hybrid", "popularity")}
    base = test["popularity"]["per_user_recall@20"]
    for m in ("keyword", "vector", "hybrid"):
        gain = [a - b for a, b in zip(test[m]["per_user_recall@20"], base, strict=True)]
        out[m]["recall@20_gain_over_popularity_ci95"] = _ci(gain, seed=seed)
    return out


def _strip(tree: Any) -> Any:
    """Drop per-user arrays (kept out of the JSON and the report)."""
    if isinstance(tree, dict):
        return {k: _strip(v) for k, v in tree.items() if not k.startswith("per_user")}
    return tree
