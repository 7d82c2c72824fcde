"""The EAR / SCPR / UNICORN rule simulator, driving the real ConversationService by structured feedback.

One session per (user, target item) pair. The user opens with one attribute of the target, chosen at
random (seeded); that is not an agent turn. Then the agent acts at most `max_turns` times: a question about
one attribute is answered yes iff the target has it; a list of at most `list_size` items succeeds iff the
target is in it, otherwise every item in it is rejected. Metrics are in `rule_metrics`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from conversation.nlu import Understanding
from conversation.service import ConversationService
from agent.state import Attr
from retrieval.catalog import item_attrs

MAX_TURNS = 14  # UNICORN's environment: the opening is step 1 of 15
LIST_SIZE = 10


@dataclass
class SessionResult:
    user: str
    target: str
    opening: str
    success: bool
    turn: int  # agent action at which it succeeded; MAX_TURNS + 1 on failure
    rank: int  # 1-based position of the target in the successful list; 0 on failure
    asks: int
    recommends: int
    fallbacks: int
    llm_turns: int
    invalid_shown: int
    invalid_ids_proposed: int  # the one name of this counter, as in Trace and the reports
    latency_s: float
    llm_calls: int = 0
    tokens: int = 0  # prompt + completion tokens of the session's LLM calls
    fallback_kinds: dict[str, int] = field(default_factory=dict)  # "plan: LLMTimeout" -> count

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict) -> SessionResult:
        """A saved row; rows written before the counter got its one name call it `invalid_proposed`."""
        row = dict(row)
        if "invalid_proposed" in row:
            row["invalid_ids_proposed"] = row.pop("invalid_proposed")
        return cls(**row)


def hdcg(turn: int, rank: int) -> float:
    """UNICORN's hDCG for a success at agent turn `turn` with the target at 1-based `rank`."""
    if rank <= 0:
        return 0.0
    return 1 / math.log2(turn + 2) + (1 / math.log2(turn + 1) - 1 / math.log2(turn + 2)) / math.log2(rank + 1)


def opening_attribute(target_attrs: Sequence[Attr], rng: random.Random) -> Attr:
    return rng.choice(sorted(target_attrs, key=lambda a: (a.type, a.value)))


def run_session(service: ConversationService, *, user: str, target: str, target_attrs: Sequence[Attr], seed: int,
                max_turns: int = MAX_TURNS, list_size: int = LIST_SIZE) -> SessionResult:
    """Play one session against the service; every shown id is checked against the path's constraints."""
    rng = random.Random(f"{seed}:{user}:{target}")
    attrs = set(target_attrs)
    opening = opening_attribute(target_attrs, rng)
    session = service.start(user_id=user)
    feedback = Understanding(accepted=[opening])
    accepted, rejected, shown = {opening}, set(), set()
    result = SessionResult(user, target, str(opening), False, max_turns + 1, 0, 0, 0, 0, 0, 0, 0, 0.0)
    try:
        for turn in range(1, max_turns + 1):
            reply = service.respond_structured(session, feedback)
            trace = reply.trace
            result.latency_s += trace.timed_s()
            result.fallbacks += len(trace.fallbacks)
            result.llm_turns += bool(trace.llm_calls)
            result.llm_calls += len(trace.llm_calls)
            result.tokens += sum(c.prompt_tokens + c.completion_tokens for c in trace.llm_calls)
            for kind in trace.fallbacks:
                kind = kind.split(" (")[0][:80]
                result.fallback_kinds[kind] = result.fallback_kinds.get(kind, 0) + 1
            result.invalid_ids_proposed += trace.invalid_ids_proposed
            action = reply.action
            if action.kind == "ask" and action.attribute is not None:
                result.asks += 1
                attr = action.attribute
                if attr in attrs:
                    accepted.add(attr)
                    feedback = Understanding(accepted=[attr])
                else:
                    rejected.add(attr)
                    feedback = Understanding(rejected=[attr])
                continue
            result.recommends += 1
            ids = [r.item_id for r in action.items][:list_size]
            result.invalid_shown += sum(not _valid(service, i, accepted, rejected, shown) for i in ids)
            if target in ids:
                result.success, result.turn, result.rank = True, turn, ids.index(target) + 1
                return result
            shown.update(ids)
            feedback = Understanding(reject_shown=True)
        return result
    finally:
        service.store.delete(session)


def _valid(service: ConversationService, item_id: str, accepted: set[Attr], rejected: set[Attr], shown: set[str]) -> bool:
    """Shown ids must be catalog items on the path: every accepted attribute, no rejected one (unless the
    policy answers "no" softly: then a rejected attribute only lowers an item's score), not shown before."""
    item = service.catalog.items.get(item_id)
    if item is None or item_id in shown:
        return False
    has = item_attrs(item)
    soft = service.policy.config.negative_answers == "soft"
    return accepted <= has and (soft or not (rejected & has))


def rule_metrics(results: Sequence[SessionResult], *, max_turns: int = MAX_TURNS) -> dict[str, float]:
    """SR@5/10/15, AT (failure counts max_turns + 1), hDCG, and the safety counters."""
    n = len(results)
    if n == 0:
        return {"sessions": 0}
    turns = sum(r.recommends + r.asks for r in results)
    kinds: dict[str, int] = {}
    for r in results:
        for kind, count in r.fallback_kinds.items():
            kinds[kind] = kinds.get(kind, 0) + count
    return {
        "sessions": n,
        "sr5": sum(r.success and r.turn <= 5 for r in results) / n,
        "sr10": sum(r.success and r.turn <= 10 for r in results) / n,
        "sr15": sum(r.success for r in results) / n,
        "at": sum(r.turn if r.success else max_turns + 1 for r in results) / n,
        "hdcg": sum(hdcg(r.turn, r.rank) if r.success else 0.0 for r in results) / n,
        "fallback_rate": sum(r.fallbacks for r in results) / max(turns, 1),
        "invalid_ids_shown": sum(r.invalid_shown for r in results),
        "invalid_ids_proposed": sum(r.invalid_ids_proposed for r in results),
        "mean_turn_latency_s": sum(r.latency_s for r in results) / max(turns, 1),
        "llm_calls_per_turn": sum(r.llm_calls for r in results) / max(turns, 1),
        "tokens_per_session": sum(r.tokens for r in results) / n,
        "fallbacks_by_kind": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
    }
