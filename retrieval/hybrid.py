"""Hybrid search: keyword (BM25) and vector results fused by weighted reciprocal rank, with attribute
filters, excluded ids, and for each hit the signals that matched (for explanations)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from retrieval.catalog import Catalog
from retrieval.keywords import KeywordIndex, split_keywords, top_rows

Mode = Literal["hybrid", "keyword", "vector"]


class VectorIndex(Protocol):
    """What hybrid search needs from a vector index (VectorStore, or MemoryVectorIndex in tests)."""

    ids: list[str]
    row_of: dict[str, int]

    def embed_query(self, text: str) -> np.ndarray: ...

    def search(self, query: str | np.ndarray, *, k: int = 20, allowed: np.ndarray | None = None,
               exclude_ids: Iterable[str] = ()) -> list: ...

    def similarities(self, vector: np.ndarray, rows: np.ndarray | Sequence[int]) -> np.ndarray: ...


class UnknownAttributeError(ValueError):
    """Attribute values the catalog does not have, each with the closest values it does have."""

    def __init__(self, unknown: dict[str, list[str]]) -> None:
        self.unknown = unknown
        parts = [f"{value!r} (closest: {', '.join(close) if close else 'none'})" for value, close in unknown.items()]
        super().__init__("unknown attribute " + "; ".join(parts))


class AttributeIndex:
    """Attribute value -> rows (catalog order) of the items that carry it; case-insensitive lookup."""

    def __init__(self, catalog: Catalog) -> None:
        self.ids = list(catalog.items)
        self.row_of = {item_id: row for row, item_id in enumerate(self.ids)}
        rows: dict[str, list[int]] = {}
        for row, item in enumerate(catalog.items.values()):
            for value in item.attribute_values:
                rows.setdefault(value, []).append(row)
        self.rows = {value: np.asarray(r, dtype=np.int64) for value, r in rows.items()}
        self._by_lower: dict[str, str] = {}
        for value in sorted(self.rows, key=lambda v: -len(self.rows[v])):
            self._by_lower.setdefault(value.lower(), value)

    def closest(self, value: str, n: int = 5) -> list[str]:
        """Valid values nearest in spelling (then by substring), most used first among equals."""
        lowered = value.strip().lower()
        names = difflib.get_close_matches(lowered, list(self._by_lower), n=n, cutoff=0.6)
        if len(names) < n and lowered:
            names += [v for v in self._by_lower if lowered in v and v not in names][: n - len(names)]
        return [self._by_lower[name] for name in names]

    def resolve(self, values: Iterable[str]) -> list[str]:
        """Catalog spellings of the values; raises UnknownAttributeError naming the closest valid ones."""
        found, unknown = [], {}
        for value in values:
            match = self._by_lower.get(value.strip().lower())
            if match is None:
                unknown[value] = self.closest(value)
            elif match not in found:
                found.append(match)
        if unknown:
            raise UnknownAttributeError(unknown)
        return found

    def mask(self, must_have: Sequence[str] = (), must_not: Sequence[str] = ()) -> np.ndarray | None:
        """Boolean mask over catalog rows (None when there is no filter). Values must be resolved."""
        if not must_have and not must_not:
            return None
        mask = np.ones(len(self.ids), dtype=bool)
        for value in must_have:
            keep = np.zeros(len(self.ids), dtype=bool)
            keep[self.rows[value]] = True
            mask &= keep
        for value in must_not:
            mask[self.rows[value]] = False
        return mask


@dataclass(frozen=True)
class FusionConfig:
    """How results are combined.

    Each retriever first takes its best items by its own score (BM25, or cosine similarity): `pool` of
    them when it has a prior, else `depth` (hybrid) or k. It divides by the best score and mixes in
    the popularity prior: (1 - prior) * relevance + prior *
    popularity (log-scaled to [0, 1]); `*_prior` = 0 is the pure retriever. Hybrid then fuses the two
    re-ranked lists by weighted reciprocal rank over their `depth` best: sum of weight / (rrf_k + rank).
    """

    keyword_weight: float = 1.0
    vector_weight: float = 1.0
    rrf_k: float = 60.0
    depth: int = 100
    pool: int = 300
    keyword_prior: float = 0.0
    vector_prior: float = 0.0


def prior_rerank(ids: Sequence[str], scores: Sequence[float], prior: dict[str, float] | np.ndarray | None,
                 weight: float, *, row_of: dict[str, int] | None = None) -> list[tuple[str, float]]:
    """(id, score) best first, score = (1 - weight) * score / max(score) + weight * prior[id]."""
    if not len(ids):
        return []
    rel = np.asarray(scores, dtype=np.float64)
    top = float(rel.max())
    rel = rel / top if top > 0 else rel
    if weight and prior is not None:
        pri = np.asarray([prior[row_of[i]] if row_of is not None else prior.get(i, 0.0) for i in ids])
        rel = (1.0 - weight) * rel + weight * pri
    order = sorted(range(len(ids)), key=lambda n: (-rel[n], n))
    return [(ids[n], float(rel[n])) for n in order]


def popularity_prior(popularity: dict[str, float], ids: Sequence[str]) -> np.ndarray:
    """log(1 + count) scaled to [0, 1], in the order of `ids`."""
    values = np.log1p(np.asarray([max(popularity.get(i, 0.0), 0.0) for i in ids], dtype=np.float64))
    top = float(values.max(initial=0.0))
    return values / top if top > 0 else values


@dataclass(frozen=True)
class Hit:
    """One search result with the evidence behind it."""

    id: str
    title: str
    score: float
    keyword_rank: int | None = None
    vector_rank: int | None = None
    keyword_score: float = 0.0
    vector_score: float | None = None
    matched_keywords: tuple[str, ...] = field(default_factory=tuple)
    matched_attributes: tuple[str, ...] = field(default_factory=tuple)
    popularity: float = 0.0

    @property
    def signals(self) -> tuple[str, ...]:
        """Which signals matched: 'keyword', 'vector', 'attribute'."""
        out = []
        if self.matched_keywords:
            out.append("keyword")
        if self.vector_rank is not None:
            out.append("vector")
        if self.matched_attributes:
            out.append("attribute")
        return tuple(out)

    def explain(self) -> str:
        """One line saying why this item came up."""
        parts = []
        if self.matched_keywords:
            parts.append("matches " + ", ".join(self.matched_keywords))
        if self.matched_attributes:
            parts.append("has " + ", ".join(self.matched_attributes))
        if self.vector_rank is not None and self.vector_score is not None:
            parts.append(f"close in meaning (#{self.vector_rank}, similarity {self.vector_score:.2f})")
        return "; ".join(parts) or "ranked by the fused score"


def rrf_fuse(ranked_lists: Sequence[tuple[Sequence[str], float]], *, rrf_k: float = 60.0) -> dict[str, float]:
    """Weighted reciprocal-rank fusion of (ranked ids, weight) lists: id -> score, best first."""
    fused: dict[str, float] = {}
    for ids, weight in ranked_lists:
        if weight:
            for rank, item_id in enumerate(ids, start=1):
                fused[item_id] = fused.get(item_id, 0.0) + weight / (rrf_k + rank)
    return dict(sorted(fused.items(), key=lambda pair: (-pair[1], pair[0])))


def value_kinds(catalog: Catalog) -> dict[str, str]:
    """Lower-cased attribute value -> its type (the type where the value is most used, if several)."""
    best: dict[str, tuple[int, str]] = {}
    for kind, counter in catalog.attribute_counts.items():
        for value, count in counter.items():
            key = value.lower()
            if key not in best or count > best[key][0]:
                best[key] = (count, kind)
    return {value: kind for value, (_count, kind) in best.items()}


def vector_query_text(keywords: Sequence[str], kind_of: dict[str, str]) -> str:
    """The keywords shaped like an item document ("k1, k2. genre: A. tag: b, c."), not a bare list.

    Item documents end in typed attribute lists (`item_document`); a query in the same shape lands
    nearer the items that carry those values (Recall@20 of the vector retriever on MovieLens validation
    users: 0.070 as a bare list, 0.083 in document shape).
    """
    typed: dict[str, list[str]] = {}
    for word in keywords:
        kind = kind_of.get(word.strip().lower())
        if kind is not None:
            typed.setdefault(kind, []).append(word.strip())
    head = ", ".join(keywords)
    if not typed:
        return head
    return " ".join([f"{head}.", *(f"{kind}: {', '.join(values)}." for kind, values in typed.items())])


class HybridSearcher:
    """Keyword, vector and fused search over one catalog, honouring filters and exclusions."""

    def __init__(self, catalog: Catalog, keywords: KeywordIndex, vectors: VectorIndex | None = None, *,
                 fusion: FusionConfig | None = None, attributes: AttributeIndex | None = None,
                 popularity: dict[str, float] | None = None) -> None:
        self.catalog = catalog
        self.keywords = keywords
        self.vectors = vectors
        self.fusion = fusion or FusionConfig()
        self.attributes = attributes or AttributeIndex(catalog)
        self.popularity = popularity if popularity is not None else catalog.popularity
        self.prior = popularity_prior(self.popularity, self.attributes.ids)
        self._kw_perm = self._permutation(keywords.ids)
        self._kind_of = value_kinds(catalog)
        self._vec_perm = self._permutation(vectors.ids) if vectors is not None else None

    def _permutation(self, index_ids: list[str]) -> np.ndarray | None:
        """Index rows -> catalog rows, or None when the index follows catalog order."""
        if index_ids == self.attributes.ids:
            return None
        missing = [i for i in index_ids[:1000] if i not in self.attributes.row_of]
        if missing or len(index_ids) != len(self.attributes.ids):
            raise ValueError(f"index does not match catalog {self.catalog.name!r}; rebuild it")
        return np.asarray([self.attributes.row_of[i] for i in index_ids], dtype=np.int64)

    def search(
        self,
        query: str | Sequence[str],
        *,
        k: int = 20,
        must_have: Sequence[str] = (),
        must_not: Sequence[str] = (),
        exclude_ids: Iterable[str] = (),
        mode: Mode = "hybrid",
        fusion: FusionConfig | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """Top-k items for the query. Attribute values are matched case-insensitively; an unknown one
        raises UnknownAttributeError with the closest valid values. `query_vector` skips embedding."""
        if mode != "keyword" and self.vectors is None:
            raise ValueError("this searcher has no vector index; use mode='keyword'")
        fusion = fusion or self.fusion
        must_have = self.attributes.resolve(must_have)
        mask = self.attributes.mask(must_have, self.attributes.resolve(must_not))
        exclude = {i for i in exclude_ids if i in self.catalog.items}
        keywords = split_keywords(query)
        # A prior re-ranks a deeper pool; without one, hybrid needs only `depth` and a single mode only k.
        need = fusion.depth if mode == "hybrid" else k
        kw_pool = max(k, fusion.pool if fusion.keyword_prior else need)
        vec_pool = max(k, fusion.pool if fusion.vector_prior else need)
        kw_scores, terms = self.keywords.score_all(keywords)
        kw_list: list[tuple[str, float]] = []
        if mode != "vector":
            kw_mask = mask if mask is None or self._kw_perm is None else mask[self._kw_perm]
            rows = top_rows(kw_scores, kw_pool, allowed=kw_mask,
                            exclude=[self.keywords.row_of[i] for i in exclude if i in self.keywords.row_of])
            kw_list = prior_rerank([self.keywords.ids[r] for r in rows], kw_scores[rows], self.prior,
                                   fusion.keyword_prior, row_of=self.attributes.row_of)
        vec_list: list[tuple[str, float]] = []
        vector = None
        vec_score: dict[str, float] = {}
        if mode != "keyword":
            vector = query_vector if query_vector is not None else self.vectors.embed_query(
                vector_query_text(keywords, self._kind_of))
            vec_mask = mask if mask is None or self._vec_perm is None else mask[self._vec_perm]
            found = self.vectors.search(vector, k=vec_pool, allowed=vec_mask, exclude_ids=exclude)
            vec_score = {h.id: h.score for h in found}
            vec_list = prior_rerank([h.id for h in found], [h.score for h in found], self.prior,
                                    fusion.vector_prior, row_of=self.attributes.row_of)
        if mode == "hybrid":
            fused = rrf_fuse([([i for i, _s in kw_list[: fusion.depth]], fusion.keyword_weight),
                              ([i for i, _s in vec_list[: fusion.depth]], fusion.vector_weight)], rrf_k=fusion.rrf_k)
        else:
            fused = dict(kw_list if mode == "keyword" else vec_list)
        best = list(fused)[:k]
        return self._hits(best, fused, kw_list, vec_list, kw_scores, terms, vector, vec_score, keywords, must_have)

    def _hits(self, best: list[str], fused: dict[str, float], kw_list: list[tuple[str, float]],
              vec_list: list[tuple[str, float]], kw_scores: np.ndarray, terms: list, vector: np.ndarray | None,
              vec_score: dict[str, float], keywords: list[str], must_have: list[str]) -> list[Hit]:
        """Hits with their evidence: ranks in each list, raw scores, matched keywords and attributes."""
        kw_rank = {item_id: n for n, (item_id, _s) in enumerate(kw_list, start=1)}
        vec_rank = {item_id: n for n, (item_id, _s) in enumerate(vec_list, start=1)}
        if vector is not None and self.vectors is not None:
            missing = [i for i in best if i not in vec_score]
            sims = self.vectors.similarities(vector, [self.vectors.row_of[i] for i in missing])
            vec_score.update(zip(missing, (float(x) for x in sims), strict=True))
        wanted = {w.lower() for w in keywords}
        hits = []
        for item_id in best:
            row = self.keywords.row_of[item_id]
            item = self.catalog.items[item_id]
            attrs = [*must_have, *sorted(v for v in item.attribute_values if v.lower() in wanted)]
            hits.append(Hit(
                id=item_id, title=item.title, score=fused[item_id],
                keyword_rank=kw_rank.get(item_id), vector_rank=vec_rank.get(item_id),
                keyword_score=float(kw_scores[row]), vector_score=vec_score.get(item_id),
                matched_keywords=tuple(self.keywords.matched(row, terms)),
                matched_attributes=tuple(dict.fromkeys(attrs)),
                popularity=float(self.popularity.get(item_id, 0.0)),
            ))
        return hits

    def filter(self, *, must_have: Sequence[str] = (), must_not: Sequence[str] = (),
               candidate_ids: Sequence[str] | None = None) -> list[str]:
        """Ids carrying every must-have and no must-not value, most popular first."""
        mask = self.attributes.mask(self.attributes.resolve(must_have), self.attributes.resolve(must_not))
        ids = self.attributes.ids
        if candidate_ids is not None:
            rows = [self.attributes.row_of[i] for i in dict.fromkeys(candidate_ids) if i in self.attributes.row_of]
        else:
            rows = range(len(ids))
        kept = [ids[r] for r in rows if mask is None or mask[r]]
        popularity = self.catalog.popularity
        return sorted(kept, key=lambda i: (-popularity.get(i, 0.0), i))
