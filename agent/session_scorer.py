"""The product's item scores for one conversation (CPR's item weights come from these).

- Items the person liked in this session are their history: EASE item-item scores over the catalog's
  interactions (MovieLens ratings for the demo catalog), plus closeness of the item embeddings to the
  liked items (the only collaborative-free signal a catalog without interactions has). Items the person
  has seen, and items the other side of an observed dialog named, join the EASE history at a lower
  weight: they say what the conversation is about, not what the person loved.
- Free-text wishes ("a heist with a twist") add hybrid-search relevance over the item documents, and
  their hits may enter the candidates (`hit_rows`), not only re-order CPR's path.
- Accepted attributes add a bonus per attribute matched, so items on the path stay ahead of wish hits
  that are off it.
- Popularity is the prior and the tie-break; alone when nothing is known yet. It counts the interactions
  of the log's last years (what people watch now), not all of them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from agent.graph import ItemAttributeGraph
from agent.policy import PopularityScorer
import time

from agent.state import ConvState, ToolCallTrace
from retrieval.catalog import Catalog
from retrieval.ranker import Ranker


@dataclass(frozen=True)
class ScoringConfig:
    """Weights of the parts of an item's score (each part is scaled to [0, 1] first)."""

    collaborative: bool = True  # EASE with the session's liked items as history
    collaborative_weight: float = 1.0
    content_weight: float = 0.5  # embedding closeness to the liked items
    genre_weight: float = 0.5  # share of the liked items' genres the item has
    wish_weight: float = 0.3  # hybrid-search relevance of free-text wishes: they refine; named items and attributes lead
    wish_hits: int = 50  # search hits per wish query (they may enter the candidates)
    wish_rank_scale: float = 5.0  # the hit at this rank gets half the relevance of the first
    accept_weight: float = 0.5  # per accepted attribute the item carries (share of them)
    popularity_weight: float = 0.15  # the prior (half the weight of a wish: a precise wish finds a rare item)
    popularity_recent_years: float | None = 3.0  # count only the log's last years (None: all of it)
    seen_weight: float = 0.5  # weight in the EASE history of an item the person has seen
    mentioned_weight: float = 0.5  # ... of an item the other side of an observed dialog named
    wishes_read: int = 3  # the latest wishes form the query


class WishSearch(Protocol):
    """What the scorer needs from hybrid search: ids with a relevance, best first."""

    def __call__(self, query: str, k: int) -> list[tuple[str, float]]: ...


class ItemVectors(Protocol):
    ids: list[str]
    vectors: np.ndarray | None


class SessionScorer:
    """Scores in [0, 1] for every graph row, from what this conversation said so far."""

    def __init__(self, catalog: Catalog, graph: ItemAttributeGraph, *, ranker: Ranker | None = None,
                 vectors: ItemVectors | None = None, search: WishSearch | None = None,
                 config: ScoringConfig | None = None, cache_size: int = 256) -> None:
        self.graph = graph
        self.config = config or ScoringConfig()
        self.popularity = PopularityScorer(catalog, graph, recent_years=self.config.popularity_recent_years).scores(
            ConvState(session_id="-"))
        self.ranker = ranker if self.config.collaborative else None
        self._ranker_rows = (np.asarray([ranker.row_of.get(i, -1) for i in graph.ids], dtype=np.int64)
                             if self.ranker is not None else None)
        self._matrix = None
        if vectors is not None and vectors.vectors is not None and self.config.content_weight:
            row_of = {item_id: row for row, item_id in enumerate(vectors.ids)}
            order = np.asarray([row_of.get(i, -1) for i in graph.ids], dtype=np.int64)
            matrix = np.asarray(vectors.vectors, dtype=np.float32)[np.maximum(order, 0)]
            matrix[order < 0] = 0.0
            self._matrix = matrix
        self.search = search
        self._genre_cols = np.asarray([c for c, a in enumerate(graph.attrs) if a.type == "genre"], dtype=np.int64)
        self._genres = graph.item_attr[:, self._genre_cols].tocsr() if len(self._genre_cols) else None
        self._cache: OrderedDict[tuple, tuple[np.ndarray, np.ndarray, list[ToolCallTrace]]] = OrderedDict()
        self._cache_size = cache_size

    def scores(self, state: ConvState) -> np.ndarray:
        return self._computed(state)[0]

    def calls(self, state: ConvState) -> list[ToolCallTrace]:
        """The ranker and search calls behind this state's scores, as the turn's trace shows them."""
        return self._computed(state)[2]

    def hit_rows(self, state: ConvState) -> np.ndarray:
        """Graph rows of the wish search's hits (candidates even when off CPR's path)."""
        return self._computed(state)[1]

    def _computed(self, state: ConvState) -> tuple[np.ndarray, np.ndarray, list[ToolCallTrace]]:
        key = (state.user_id, tuple(state.liked_items), tuple(state.seen_items), tuple(state.mentioned_items),
               tuple(state.wishes[-self.config.wishes_read:]), tuple(state.accepted))
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        config = self.config
        calls: list[ToolCallTrace] = []
        total = config.popularity_weight * self.popularity
        liked = self.graph.rows(state.liked_items)
        mark = time.perf_counter()
        history = self._history(state)
        collaborative = self._collaborative(state, history)
        if collaborative is not None:
            total = total + config.collaborative_weight * collaborative
            calls.append(ToolCallTrace(name="rank_candidates", arguments={"history_ids": list(history)[:20]},
                                       observation=f"EASE item-item scores for a history of {len(history)} items "
                                                   f"({len(liked)} liked)",
                                       latency_s=time.perf_counter() - mark))
        if len(liked) and self._matrix is not None:
            total = total + config.content_weight * self._content(liked)
        if len(liked) and config.genre_weight and len(self._genre_cols):
            total = total + config.genre_weight * self._genre_overlap(liked)
        hits = np.zeros(0, dtype=np.int64)
        if state.wishes and self.search is not None:
            mark = time.perf_counter()
            relevance, hits = self._wishes(state)
            total = total + config.wish_weight * relevance
            query = " ".join(state.wishes[-config.wishes_read:])
            calls.append(ToolCallTrace(name="search_hybrid", arguments={"query": query, "k": config.wish_hits},
                                       observation=f"{len(hits)} items for {query!r}",
                                       latency_s=time.perf_counter() - mark))
        if state.accepted:
            matched = np.zeros(len(self.graph), dtype=np.float64)
            for attr in state.accepted:
                matched[self.graph.items_with(attr)] += 1.0
            total = total + config.accept_weight * matched / len(state.accepted)
        top = float(total.max(initial=0.0))
        result = (total / top if top > 0 else total, hits, calls)
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def _collaborative(self, state: ConvState, history: dict[str, float]) -> np.ndarray | None:
        """EASE scores with the known user's history and the session's weighted items, scaled to [0, 1]."""
        if self.ranker is None or self._ranker_rows is None:
            return None
        rows = self.ranker.history_rows(user_id=state.user_id, history_ids=history)
        if not len(rows):
            return None
        weight_of = {self.ranker.row_of[i]: w for i, w in history.items() if i in self.ranker.row_of}
        personal = self.ranker.personal_scores(rows, weights=np.asarray([weight_of.get(int(r), 1.0) for r in rows]))
        top = float(personal.max(initial=0.0))
        if top <= 0:
            return None
        mapped = np.where(self._ranker_rows >= 0, personal[np.maximum(self._ranker_rows, 0)], 0.0)
        return np.maximum(mapped, 0.0) / top

    def _history(self, state: ConvState) -> dict[str, float]:
        """The session's items for the EASE history with their weights; liked outweighs seen or mentioned."""
        out: dict[str, float] = {}
        for items, weight in ((state.mentioned_items, self.config.mentioned_weight),
                              (state.seen_items, self.config.seen_weight), (state.liked_items, 1.0)):
            for item_id in items:
                if weight > 0:
                    out[item_id] = weight
        for item_id in state.disliked_items:
            out.pop(item_id, None)
        return out

    def _content(self, liked: np.ndarray) -> np.ndarray:
        """Cosine of each item to the mean of the liked items' vectors, negatives cut to 0."""
        anchor = self._matrix[liked].mean(axis=0)
        norm = float(np.linalg.norm(anchor))
        if norm == 0:
            return np.zeros(len(self.graph))
        sims = self._matrix @ (anchor / norm)
        return np.clip(sims, 0.0, 1.0).astype(np.float64)

    def _genre_overlap(self, liked: np.ndarray) -> np.ndarray:
        """For each item, the share of the liked items' genres it carries."""
        wanted = (np.asarray(self._genres[liked].sum(axis=0)).ravel() > 0).astype(np.float64)
        if not wanted.any():
            return np.zeros(len(self.graph))
        return np.asarray(self._genres @ wanted).ravel() / wanted.sum()

    def _wishes(self, state: ConvState) -> tuple[np.ndarray, np.ndarray]:
        query = " ".join(state.wishes[-self.config.wishes_read:])
        found = self.search(query, self.config.wish_hits)
        relevance = np.zeros(len(self.graph), dtype=np.float64)
        rows = []
        for rank, (item_id, _score) in enumerate(found):
            row = self.graph.row_of.get(item_id)
            if row is not None:
                # By rank, not by fused score: reciprocal-rank scores are nearly flat across the hits.
                relevance[row] = 1.0 / (1.0 + rank / self.config.wish_rank_scale)
                rows.append(row)
        return relevance, np.asarray(rows, dtype=np.int64)
