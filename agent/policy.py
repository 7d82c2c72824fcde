"""CPR path reasoning: prune candidates along the conversation's path on the item–attribute graph, ask the
attribute whose answer splits the ranker-weighted candidates most evenly, recommend when confident.

This is the `graph` mode: it needs no LLM. The LLM planner (agent/planner.py) picks among the legal actions
it exposes (`Decision.attributes`, `Decision.ranked`).
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from agent.graph import PEOPLE_TYPES, ItemAttributeGraph
from agent.state import Attr, ConvState
from retrieval.catalog import Catalog

ASK_TYPES = ("genre", "category", "decade", "tag")
# Named (not asked) attributes that still prune along the path when the person states them: people.
PATH_TYPES = PEOPLE_TYPES


@dataclass(frozen=True)
class PolicyConfig:
    """When to ask and when to recommend. The rule benchmark's values are tuned on `valid` (reports/)."""

    max_questions: int = 3  # questions before recommending anyway
    recommend_below: int = 12  # recommend once this few candidates remain
    recommend_mass: float = 1.01  # ... or once the top list holds this share of candidate weight (>1: never)
    temperature: float = 0.1  # softmax temperature over [0, 1] item scores -> candidate weights
    list_size: int = 5
    ask_types: tuple[str, ...] = ASK_TYPES
    min_support: int = 2  # an attribute must cover at least this many candidates to be asked
    legal_attributes: int = 5  # how many top attributes the planner may choose from
    turn_budget: int | None = None  # when the conversation has a known last turn, recommend on it
    anchor_recommends: bool = True  # a movie the person liked is a stronger signal than any one question
    # What a "no" to an attribute does: "prune" removes every item that has it (CPR's path); "soft" keeps
    # them and lowers their score by `reject_penalty` per rejected attribute (UNICORN's and SCPR's agents).
    negative_answers: Literal["prune", "soft"] = "prune"
    reject_penalty: float = 0.5


@dataclass
class Decision:
    kind: str  # "ask" | "recommend"
    candidates: list[str]
    ranked: list[tuple[str, float]] = field(default_factory=list)
    attribute: Attr | None = None
    attributes: list[tuple[Attr, float]] = field(default_factory=list)  # legal questions, best first
    top_mass: float = 0.0


class Scorer(Protocol):
    """Item scores in [0, 1] for a conversation, one per graph row (higher is better)."""

    def scores(self, state: ConvState) -> np.ndarray: ...


class PopularityScorer:
    """log(1 + interactions) times smoothed mean rating, scaled to [0, 1]; the cold-start scorer. With
    `recent_years`, log(1 + interactions of the log's last years) instead (`recent_popularity`)."""

    def __init__(self, catalog: Catalog, graph: ItemAttributeGraph, *, recent_years: float | None = None) -> None:
        raw = _popularity_scores(catalog) if recent_years is None else recent_popularity(catalog, years=recent_years)
        values = np.asarray([raw.get(i, 0.0) for i in graph.ids], dtype=np.float64)
        top = float(values.max(initial=0.0))
        self._scores = values / top if top > 0 else values

    def scores(self, state: ConvState) -> np.ndarray:
        return self._scores


class RankerScorer:
    """The classical ranker's personal scores for a known user; popularity for anyone else."""

    def __init__(self, ranker, graph: ItemAttributeGraph, fallback: Scorer, *, cache_size: int = 512) -> None:
        self.ranker = ranker
        self.fallback = fallback
        self.order = np.asarray([ranker.row_of.get(i, -1) for i in graph.ids], dtype=np.int64)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def scores(self, state: ConvState) -> np.ndarray:
        user = state.user_id
        if not user or user not in self.ranker.users:
            return self.fallback.scores(state)
        cached = self._cache.get(user)
        if cached is None:
            base, _source = self.ranker.base_scores(self.ranker.history_rows(user_id=user))
            cached = np.where(self.order >= 0, base[np.maximum(self.order, 0)], 0.0)
            self._cache[user] = cached
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(user)
        return cached

    def seen_rows(self, state: ConvState) -> np.ndarray:
        """Graph rows of the items the user already interacted with (never recommended again)."""
        if not state.user_id or state.user_id not in self.ranker.users:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.isin(self.order, self.ranker.users[state.user_id]))


class CPRPolicy:
    """Candidates along the path, weighted-entropy questions, a confidence rule for recommending."""

    def __init__(self, catalog: Catalog, config: PolicyConfig, *, scorer: Scorer | None = None,
                 graph: ItemAttributeGraph | None = None, exclude_history: bool = True) -> None:
        self.catalog = catalog
        self.config = config
        self.graph = graph or ItemAttributeGraph(catalog, types=(*config.ask_types, *PATH_TYPES))
        self.scorer = scorer or PopularityScorer(catalog, self.graph)
        self.exclude_history = exclude_history
        allowed = set(config.ask_types)
        self._askable = np.asarray([a.type in allowed for a in self.graph.attrs], dtype=bool)

    def candidate_rows(self, state: ConvState) -> np.ndarray:
        prune = self.config.negative_answers == "prune"
        mask = self.graph.candidate_mask(state, prune_rejected=prune)
        hit_rows = getattr(self.scorer, "hit_rows", None)
        hits = hit_rows(state) if hit_rows is not None else ()
        if len(hits) and state.accepted:  # search hits enter even off the path, never past a "no"
            allowed = self.graph.candidate_mask(state.model_copy(update={"accepted": []}), prune_rejected=prune)
            mask[hits[allowed[hits]]] = True
        seen_rows = getattr(self.scorer, "seen_rows", None)
        if self.exclude_history and seen_rows is not None:
            mask[seen_rows(state)] = False
        return np.flatnonzero(mask)

    def scores(self, state: ConvState) -> np.ndarray:
        """The scorer's item scores; with soft negative answers, lowered per rejected attribute an item has."""
        scores = self.scorer.scores(state)
        if self.config.negative_answers == "soft" and state.rejected:
            scores = scores - self.config.reject_penalty * self.graph.rejected_counts(state)
        return scores

    def candidates(self, state: ConvState) -> list[str]:
        return self.graph.ids_of(self.candidate_rows(state))

    def _ordered(self, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
        return rows[np.lexsort((rows, -scores[rows]))]

    def ranked_candidates(self, state: ConvState, k: int) -> list[str]:
        """The first k candidates for this state, best first (what a recommendation would draw from)."""
        rows = self.candidate_rows(state)
        return self.graph.ids_of(self._ordered(rows, self.scores(state))[:k])

    def rank(self, ids: list[str], state: ConvState | None = None) -> list[tuple[str, float]]:
        scores = self.scores(state or ConvState(session_id="-"))
        rows = self._ordered(self.graph.rows(ids), scores)
        return [(self.graph.ids[r], float(scores[r])) for r in rows]

    def weights(self, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Softmax of the candidates' scores at the configured temperature."""
        if len(rows) == 0:
            return np.zeros(0)
        logits = scores[rows] / max(self.config.temperature, 1e-6)
        w = np.exp(logits - logits.max())
        return w / w.sum()

    def question_scores(self, state: ConvState, rows: np.ndarray, weights: np.ndarray) -> list[tuple[Attr, float]]:
        """Askable attributes adjacent to the candidates, by weighted binary entropy, best first."""
        if len(rows) == 0:
            return []
        mass = self.graph.attribute_mass(rows, weights)
        counts = self.graph.attribute_counts(rows)
        legal = self._askable & (counts >= self.config.min_support) & (counts < len(rows))
        for attr in (*state.accepted, *state.rejected, *state.asked):
            col = self.graph.col_of.get(attr)
            if col is not None:
                legal[col] = False
        cols = np.flatnonzero(legal)
        if len(cols) == 0:
            return []
        p = np.clip(mass[cols], 1e-12, 1 - 1e-12)
        h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
        order = np.lexsort((cols, -h))[: self.config.legal_attributes]
        return [(self.graph.attrs[cols[o]], float(h[o])) for o in order]

    def best_question(self, state: ConvState, ids: list[str]) -> Attr | None:
        rows = self.graph.rows(ids)
        scores = self.scores(state)
        legal = self.question_scores(state, rows, self.weights(rows, scores))
        return legal[0][0] if legal else None

    def decide(self, state: ConvState) -> Decision:
        rows = self.candidate_rows(state)
        if len(rows) == 0 and state.accepted:  # nothing fits every constraint: fall back to popular items
            keep = np.ones(len(self.graph), dtype=bool)
            keep[self.graph.rows([*state.rejected_items, *state.shown_items, *state.named_items])] = False
            rows = np.flatnonzero(keep)
        scores = self.scores(state)
        ordered = self._ordered(rows, scores)
        ranked = [(self.graph.ids[r], float(scores[r])) for r in ordered[: self.config.list_size]]
        ids = self.graph.ids_of(ordered)
        weights = self.weights(ordered, scores)
        top_mass = float(weights[: self.config.list_size].sum()) if len(weights) else 0.0
        confident = len(ordered) <= self.config.recommend_below or top_mass >= self.config.recommend_mass
        last_turn = self.config.turn_budget is not None and state.turn >= self.config.turn_budget
        anchored = self.config.anchor_recommends and bool(state.liked_items)
        if not len(ordered) or confident or last_turn or anchored or state.questions_asked >= self.config.max_questions:
            return Decision("recommend", ids, ranked, top_mass=top_mass)
        legal = self.question_scores(state, ordered, weights)
        if not legal:
            return Decision("recommend", ids, ranked, top_mass=top_mass)
        return Decision("ask", ids, ranked, attribute=legal[0][0], attributes=legal, top_mass=top_mass)


def template_reason(catalog: Catalog, item_id: str, state: ConvState) -> str:
    """The template reasons as one line."""
    return "; ".join(template_reasons(catalog, item_id, state))


def template_reasons(catalog: Catalog, item_id: str, state: ConvState) -> list[str]:
    """Reasons grounded only in the item's own attributes, what the user asked for first."""
    item = catalog.items[item_id]
    matched = [a.value for a in state.accepted if a.value in item.attributes.get(a.type, ())]
    parts = []
    if matched:
        parts.append("matches " + ", ".join(matched))
    anchor, shared = _anchor_reason(catalog, item, state)
    if anchor:
        parts.append(anchor)
        matched += shared
    other = [g for g in item.attributes.get("genre", []) if g not in matched][:3]
    if other:
        parts.append(", ".join(other))
    decade = item.attributes.get("decade", [])
    if decade and decade[0] not in matched:
        parts.append(f"from the {decade[0]}")
    tags = [t for t in item.attributes.get("tag", []) if t not in matched][:3]
    if tags:
        parts.append("tagged " + ", ".join(tags))
    return parts or ["popular in the catalog"]


def _anchor_reason(catalog: Catalog, item, state: ConvState) -> tuple[str, list[str]]:
    """("like <liked title>: <genres both share>", those genres) for the liked item sharing the most."""
    genres = set(item.attributes.get("genre", []))
    best, shared = None, []
    for liked_id in state.liked_items:
        liked = catalog.items.get(liked_id)
        common = [g for g in liked.attributes.get("genre", []) if g in genres] if liked else []
        if len(common) > len(shared):
            best, shared = liked, common
    return (f"like {best.title}: {', '.join(shared[:3])}", shared) if best is not None else ("", [])


def recent_popularity(catalog: Catalog, *, years: float) -> dict[str, float]:
    """log(1 + interactions in the last `years` of the catalog's log): what people watch now, not what
    they watched when the log began; all interactions when none has a timestamp."""
    source = catalog.splits.get("train", catalog.interactions)
    stamps = [row.timestamp for row in source if row.timestamp is not None]
    since = max(stamps) - years * 365.25 * 86400 if stamps else None
    counts = Counter(row.item for row in source
                     if since is None or (row.timestamp is not None and row.timestamp >= since))
    return {item_id: math.log1p(counts.get(item_id, 0)) for item_id in catalog.items}


def _popularity_scores(catalog: Catalog) -> dict[str, float]:
    """log(1 + interactions), scaled by the item's smoothed mean rating where ratings exist."""
    source = catalog.splits.get("train", catalog.interactions)
    counts: Counter[str] = Counter()
    sums: Counter[str] = Counter()
    rated = 0
    for row in source:
        counts[row.item] += 1
        if row.rating is not None:
            sums[row.item] += row.rating
            rated += 1
    prior = (sum(sums.values()) / rated) if rated else 0.0
    scores = {}
    for item_id in catalog.items:
        n = counts.get(item_id, 0)
        quality = ((sums[item_id] + 10 * prior) / (n + 10)) / 5.0 if rated else 1.0
        scores[item_id] = math.log1p(n) * quality
    return scores


def _binary_entropy(p: float) -> float:
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
