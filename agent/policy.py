"""The first conversation policy: filter by what was said, rank by popularity, ask the best-splitting attribute."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from conversation.state import Attr, ConvState
from retrieval.catalog import Catalog

ASK_TYPES = ("genre", "category", "decade", "tag")


@dataclass(frozen=True)
class PolicyConfig:
    max_questions: int = 3
    recommend_below: int = 12
    list_size: int = 5
    ask_types: tuple[str, ...] = ASK_TYPES
    min_support: int = 2


@dataclass
class Decision:
    kind: str  # "ask" | "recommend"
    candidates: list[str]
    ranked: list[tuple[str, float]] = field(default_factory=list)
    attribute: Attr | None = None


class PopularityPolicy:
    """Candidates are the items matching the most accepted attributes and none rejected; ranked by popularity."""

    def __init__(self, catalog: Catalog, config: PolicyConfig) -> None:
        self.catalog = catalog
        self.config = config
        self.index: dict[Attr, set[str]] = {}
        for item in catalog.items.values():
            for kind, values in item.attributes.items():
                for value in values:
                    self.index.setdefault(Attr(type=kind, value=value), set()).add(item.id)
        self.scores = _popularity_scores(catalog)

    def candidates(self, state: ConvState) -> list[str]:
        """Items adjacent to the most accepted attributes, minus rejected attributes and items."""
        excluded = set(state.rejected_items)
        for attr in state.rejected:
            excluded |= self.index.get(attr, set())
        hits: Counter[str] = Counter()
        for attr in state.accepted:
            hits.update(self.index.get(attr, ()))
        if hits:
            best = max(hits.values())
            pool = [item_id for item_id, n in hits.items() if n == best]
        else:
            pool = list(self.catalog.items)
        return [item_id for item_id in pool if item_id not in excluded]

    def rank(self, ids: list[str]) -> list[tuple[str, float]]:
        ranked = sorted(ids, key=lambda i: (-self.scores.get(i, 0.0), i))
        return [(i, self.scores.get(i, 0.0)) for i in ranked]

    def best_question(self, state: ConvState, ids: list[str]) -> Attr | None:
        """The attribute whose yes/no answer splits the candidate weight most evenly (weighted entropy)."""
        known = set(state.accepted) | set(state.rejected) | set(state.asked)
        total = 0.0
        mass: dict[Attr, float] = {}
        support: Counter[Attr] = Counter()
        for item_id in ids:
            weight = self.scores.get(item_id, 0.0) + 1e-3
            total += weight
            for kind in self.config.ask_types:
                for value in self.catalog.items[item_id].attributes.get(kind, ()):
                    attr = Attr(type=kind, value=value)
                    mass[attr] = mass.get(attr, 0.0) + weight
                    support[attr] += 1
        best, best_h = None, 0.0
        for attr, m in sorted(mass.items(), key=lambda kv: str(kv[0])):
            if attr in known or support[attr] < self.config.min_support or support[attr] == len(ids):
                continue
            h = _binary_entropy(m / total)
            if h > best_h + 1e-12:
                best, best_h = attr, h
        return best

    def decide(self, state: ConvState) -> Decision:
        ids = self.candidates(state)
        ranked = self.rank(ids)
        few = len(ids) <= self.config.recommend_below
        out_of_questions = state.questions_asked >= self.config.max_questions
        if not ids or few or out_of_questions:
            return Decision("recommend", ids, ranked[: self.config.list_size])
        attr = self.best_question(state, ids)
        if attr is None:
            return Decision("recommend", ids, ranked[: self.config.list_size])
        return Decision("ask", ids, ranked[: self.config.list_size], attribute=attr)


def template_reason(catalog: Catalog, item_id: str, state: ConvState) -> str:
    """A reason grounded only in the item's own attributes, what the user asked for first."""
    item = catalog.items[item_id]
    matched = [a.value for a in state.accepted if a.value in item.attributes.get(a.type, ())]
    parts = []
    if matched:
        parts.append("matches " + ", ".join(matched))
    other = [g for g in item.attributes.get("genre", []) if g not in matched][:3]
    if other:
        parts.append(", ".join(other))
    decade = item.attributes.get("decade", [])
    if decade and decade[0] not in matched:
        parts.append(f"from the {decade[0]}")
    tags = [t for t in item.attributes.get("tag", []) if t not in matched][:3]
    if tags:
        parts.append("tagged " + ", ".join(tags))
    return "; ".join(parts) if parts else "popular in the catalog"


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
