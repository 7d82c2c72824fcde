"""LLM re-ranking with grounded reasons (KALM4Rec stage 2), gated and fused with the classical ranker.

The LLM sees numbered candidates (catalog text marked as data) and returns, under a JSON schema whose
numbers are an enum of the candidates, an order with one short reason and the attributes it cites.
Every proposed number is checked (candidates only, no duplicates), every cited attribute is checked
against the item, and the final order fuses the LLM's order with the ranker's by weighted reciprocal
rank, so catalog text alone cannot buy the top slot. Any failure falls back to the ranker's order with
template reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, Field, StrictInt

from agent.llm import ChatModel
from agent.prompts import PromptTemplate
from agent.step import Fallback, llm_step
from agent.state import ConvState, LLMCallTrace
from retrieval.catalog import Catalog

MAX_ATTRIBUTES_SHOWN = 8


@dataclass(frozen=True)
class RerankConfig:
    top_n: int = 8  # candidates shown to the LLM
    keep: int = 5  # items returned
    llm_weight: float = 1.2  # RRF weight of the LLM's order: it may reorder the ranker's strong items ...
    ranker_weight: float = 1.0  # ... but an item the ranker puts near the bottom cannot reach the top
    rrf_k: float = 2.0
    max_tokens: int | None = None  # None: enough for `keep` entries (tokens_per_pick each), so the JSON is never cut
    tokens_per_pick: int = 60
    timeout_s: float = 30.0


@dataclass
class Reranked:
    ids: list[str]
    reasons: dict[str, str]
    cited: dict[str, list[str]] = field(default_factory=dict)
    invalid_ids_proposed: int = 0  # numbers outside the candidates, or repeated
    cites_dropped: int = 0  # cited attributes the item does not have
    fallback: str | None = None
    trace: LLMCallTrace | None = None


class RankedPick(BaseModel):
    """One entry of the LLM's order; the number is checked against the candidates in `rerank`."""

    n: StrictInt | None = None
    reason: str = ""
    cites: list[str] = Field(default_factory=list)


class Ranking(BaseModel):
    ranking: list[RankedPick]


def rerank_schema(n_candidates: int, keep: int) -> dict:
    """JSON schema: an ordered list of candidate numbers (enum) with a short reason and cited attributes."""
    return {
        "type": "object",
        "properties": {
            "ranking": {
                "type": "array",
                "maxItems": keep,
                "items": {
                    "type": "object",
                    "properties": {
                        "n": {"type": "integer", "enum": list(range(1, n_candidates + 1))},
                        "reason": {"type": "string", "maxLength": 90},
                        "cites": {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 40}},
                    },
                    "required": ["n", "reason", "cites"],
                },
            }
        },
        "required": ["ranking"],
    }


def rerank(
    candidates: Sequence[tuple[str, float]],
    state: ConvState,
    catalog: Catalog,
    *,
    model: ChatModel | None,
    prompt: PromptTemplate,
    config: RerankConfig = RerankConfig(),
    template_reason=None,
) -> Reranked:
    """Re-rank (id, ranker score) candidates, best first; never returns an id outside `candidates`."""
    pool = [item_id for item_id, _score in candidates[: config.top_n]]
    fallback_reason = template_reason or (lambda item_id: _attribute_reason(catalog, item_id))
    default = Reranked(ids=pool[: config.keep], reasons={i: fallback_reason(i) for i in pool[: config.keep]})
    if model is None or len(pool) < 2:
        return default
    listed = [{"n": n, "title": catalog.items[i].title, "attributes": _attributes(catalog, i)}
              for n, i in enumerate(pool, start=1)]
    variables = dict(wishes=state.wishes[-3:], accepted=[a.value for a in state.accepted],
                     rejected=[a.value for a in state.rejected], candidates=listed, n=min(config.keep, len(pool)))
    step = llm_step(model, prompt, purpose="rerank", variables=variables, output=Ranking,
                    json_schema=rerank_schema(len(pool), config.keep), max_tokens=config.max_tokens or 20 + config.tokens_per_pick * config.keep,
                    timeout_s=config.timeout_s)
    if step.fallback is not None:
        default.fallback, default.trace = str(step.fallback), step.trace
        return default
    trace = step.trace
    order, reasons, cited, invalid, dropped = [], {}, {}, 0, 0
    for entry in step.value.ranking:
        n = entry.n
        if n is None or not 1 <= n <= len(pool) or pool[n - 1] in order:
            invalid += 1
            continue
        item_id = pool[n - 1]
        order.append(item_id)
        have = {v.lower() for v in catalog.items[item_id].attribute_values}
        cites = entry.cites
        good = [c for c in cites if c.lower() in have]
        dropped += len(cites) - len(good)
        reason = entry.reason.strip()
        # a reason citing anything the item lacks is replaced by one built from the item's own attributes
        reasons[item_id] = reason if reason and len(good) == len(cites) and good else fallback_reason(item_id)
        cited[item_id] = good
    if not order:
        default.fallback = str(Fallback("rerank", "no valid candidate named"))
        default.trace, default.invalid_ids_proposed = trace, invalid
        return default
    fused = fuse(order, pool, config)[: config.keep]
    return Reranked(ids=fused, reasons={i: reasons.get(i) or fallback_reason(i) for i in fused}, cited=cited,
                    invalid_ids_proposed=invalid, cites_dropped=dropped, trace=trace)


def fuse(llm_order: Sequence[str], ranker_order: Sequence[str], config: RerankConfig) -> list[str]:
    """Weighted reciprocal-rank fusion. Items the LLM left out share the rank after its last one."""
    llm_rank = {item_id: rank for rank, item_id in enumerate(llm_order, start=1)}
    score: dict[str, float] = {}
    for rank, item_id in enumerate(ranker_order, start=1):
        own = llm_rank.get(item_id, len(llm_order) + 1)
        score[item_id] = config.ranker_weight / (config.rrf_k + rank) + config.llm_weight / (config.rrf_k + own)
    position = {item_id: n for n, item_id in enumerate(ranker_order)}
    return sorted(score, key=lambda i: (-score[i], position.get(i, len(position))))


def _attributes(catalog: Catalog, item_id: str) -> list[str]:
    item = catalog.items[item_id]
    values = [v for kind in sorted(item.attributes) for v in item.attributes[kind]]
    return values[:MAX_ATTRIBUTES_SHOWN]


def _attribute_reason(catalog: Catalog, item_id: str) -> str:
    return ", ".join(_attributes(catalog, item_id)[:4]) or "popular in the catalog"
