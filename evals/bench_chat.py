"""`concierge bench chat`: turn latency of the chat service with its configured model, over scripted turns.

Scripted conversations go through `ConversationService.respond` exactly as the UI sends them: free text,
streamed. Openings rotate through the kinds of request people make: attributes from the catalog's own
vocabulary, titles of popular items ("something like X"), a person named in the catalog, a free-text
wish, and a message in another language. Every later message answers what the agent just did (yes / no /
doesn't matter to a question, "something else" or "seen it" to recommendations), in a fixed rotation, so
a rerun plays the same turns.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from conversation.service import ConversationService
from agent.state import TurnResult
from evals.stats import percentile

COMMAND = "concierge bench chat"
WISHES = ("a heist with a clever twist", "something cosy for a rainy Sunday afternoon",
          "a mind-bending story about dreams and memory")
OTHER_LANGUAGES = ("Ich suche einen lustigen Film f\u00fcr heute Abend", "Quiero ver una pel\u00edcula de terror",
                   "Je voudrais un film d'animation pour les enfants")
PEOPLE_TYPES = ("director", "actor", "star", "cast")
# For a catalog without people fields (the demo catalog names people only in its tags).
PEOPLE_REQUESTS = ("a comedy with Tom Hanks", "something directed by Christopher Nolan")
ANSWERS = ("yes please", "no, not that", "doesn't matter to me", "yes")
REACTIONS = ("none of those, something else", "seen them all, more please")


@dataclass
class TurnSample:
    """One measured turn: wall time to the whole reply, time to the first streamed chunk, LLM use."""

    conversation: int
    turn: int
    text: str
    action: str
    latency_s: float
    first_chunk_s: float | None
    llm_calls: int
    llm_s: float
    prompt_tokens: int
    completion_tokens: int
    degraded: bool
    reply: str = ""
    fallbacks: list[str] = field(default_factory=list)


def openings(catalog, n: int) -> list[str]:
    """`n` opening requests from the catalog's commonest attribute values (genres, tags, decades)."""
    counts = catalog.attribute_counts
    genres = [v for v, _c in counts.get("genre", Counter()).most_common(12)]
    tags = [v for v, _c in counts.get("tag", Counter()).most_common(12)]
    decades = [v for v, _c in counts.get("decade", Counter()).most_common(6)]
    shapes = (
        lambda k: f"I'd like something {genres[k % len(genres)].lower()}",
        lambda k: f"any good {genres[(k + 3) % len(genres)].lower()} from the {decades[k % len(decades)]}?" if decades
        else f"any good {genres[(k + 3) % len(genres)].lower()}?",
        lambda k: f"something {tags[k % len(tags)]}, but not {genres[(k + 5) % len(genres)].lower()}" if tags
        else f"anything but {genres[(k + 5) % len(genres)].lower()}",
        lambda k: f"recommend me a {genres[(k + 1) % len(genres)].lower()} {genres[(k + 2) % len(genres)].lower()} please",
    )
    if not genres:
        return [f"something good to try, number {k + 1}" for k in range(n)]
    titles = _popular_titles(catalog, 8)
    people = [v for kind in PEOPLE_TYPES for v, _c in counts.get(kind, Counter()).most_common(3)]
    shapes = (
        *shapes[:2],
        lambda k: f"Something like {titles[k % len(titles)]} please" if titles else shapes[2](k),
        lambda k: WISHES[k % len(WISHES)],
        lambda k: f"I loved {titles[(k + 1) % len(titles)]} and {titles[(k + 2) % len(titles)]}, what else?"
        if len(titles) > 2 else shapes[3](k),
        lambda k: OTHER_LANGUAGES[k % len(OTHER_LANGUAGES)],
        lambda k: f"a {genres[k % len(genres)].lower()} with {people[k % len(people)]}" if people
        else PEOPLE_REQUESTS[k % len(PEOPLE_REQUESTS)],
        shapes[2], shapes[3],
    )
    return [shapes[k % len(shapes)](k) for k in range(n)]


def _popular_titles(catalog, n: int) -> list[str]:
    """The most popular items' titles as a person types them: no year, "The X" rather than "X, The"."""
    import re

    top = sorted(catalog.items, key=lambda i: -catalog.popularity.get(i, 0.0))[:n]
    titles = []
    for item_id in top:
        title = re.sub(r"\s*\(\d{4}\)\s*$", "", catalog.items[item_id].title)
        moved = re.match(r"^(.*), (The|A|An)$", title)
        titles.append(f"{moved.group(2)} {moved.group(1)}" if moved else title)
    return titles


def follow_up(result: TurnResult, step: int) -> str:
    """The scripted user's next message: an answer to a question, or a reaction to recommendations."""
    if result.action.kind == "ask":
        return ANSWERS[step % len(ANSWERS)]
    return REACTIONS[step % len(REACTIONS)]


def _sample(conversation: int, turn: int, text: str, result: TurnResult, wall_s: float,
            first_chunk_s: float | None) -> TurnSample:
    calls = result.trace.llm_calls
    return TurnSample(
        conversation=conversation, turn=turn, text=text, action=result.action.kind, latency_s=wall_s,
        first_chunk_s=first_chunk_s, llm_calls=len(calls), llm_s=sum(c.latency_s or 0.0 for c in calls),
        prompt_tokens=sum(c.prompt_tokens or 0 for c in calls),
        completion_tokens=sum(c.completion_tokens or 0 for c in calls),
        degraded=result.trace.degraded, reply=result.text.split("\n")[0][:160], fallbacks=list(result.trace.fallbacks),
    )


def play(service: ConversationService, text: str, session_id: str, conversation: int, turn: int) -> tuple[TurnSample, TurnResult]:
    """One streamed turn, timed from the call to the whole result; the first chunk's time is kept too."""
    first: list[float] = []
    started = time.perf_counter()

    def on_token(_chunk: str) -> None:
        if not first:
            first.append(time.perf_counter() - started)

    result = service.respond(session_id, text, on_token=on_token)
    wall = time.perf_counter() - started
    return _sample(conversation, turn, text, result, wall, first[0] if first else None), result


def run_chat_bench(service: ConversationService, *, conversations: int = 10, turns: int = 5, warmup: int = 1,
                   advance: Callable[[int], None] = lambda n: None) -> dict[str, Any]:
    """Play `conversations` x `turns` scripted turns (after `warmup` unmeasured turns) and summarise them."""
    if conversations < 1 or turns < 1:
        raise ValueError("need at least one conversation of one turn")
    first_turns = []  # the turns right after start (and `service.warm_up()`): what the first person waits
    for k in range(warmup):
        sample, _result = play(service, openings(service.catalog, k + 3)[-1], service.start(), -1, 0)
        first_turns.append(sample.latency_s)
    samples: list[TurnSample] = []
    for c, opening in enumerate(openings(service.catalog, conversations)):
        session_id, text = service.start(), opening
        for t in range(turns):
            sample, result = play(service, text, session_id, c, t + 1)
            samples.append(sample)
            advance(1)
            text = follow_up(result, c + t)
    summary = summarise(samples, model=getattr(service.model, "name", None), prompts=_prompts(service))
    summary["first_turn_s"] = first_turns[0] if first_turns else None
    return summary


def _prompts(service: ConversationService) -> dict[str, str | None]:
    cfg = service.config
    return {"reply": cfg.reply_prompt if cfg.phrase else None, "rerank": cfg.rerank_prompt,
            "planner": cfg.planner_prompt if cfg.mode == "llm" else None, "mode": cfg.mode}


def _spread(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0, "mean": 0.0}
    values = list(values)
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values, default=0.0),
            "mean": statistics.fmean(values) if values else 0.0}


def summarise(samples: Sequence[TurnSample], *, model: str | None, prompts: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: latency and first-chunk spread, LLM calls per turn, tokens, degraded turns."""
    firsts = [s.first_chunk_s for s in samples if s.first_chunk_s is not None]
    by_action = {kind: _spread([s.latency_s for s in samples if s.action == kind])
                 for kind in sorted({s.action for s in samples})}
    return {
        "command": COMMAND,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_average_1m": os.getloadavg()[0]},
        "model": model,
        "prompts": prompts,
        "turns": len(samples),
        "latency_s": _spread([s.latency_s for s in samples]),
        "first_chunk_s": _spread(firsts),
        "latency_by_action_s": by_action,
        "llm_calls_per_turn": statistics.fmean(s.llm_calls for s in samples) if samples else 0.0,
        "llm_calls_histogram": dict(sorted(Counter(s.llm_calls for s in samples).items())),
        "prompt_tokens_per_turn": statistics.fmean(s.prompt_tokens for s in samples) if samples else 0.0,
        "completion_tokens_per_turn": statistics.fmean(s.completion_tokens for s in samples) if samples else 0.0,
        "degraded_turns": sum(s.degraded for s in samples),
        "fallbacks": dict(Counter(f.split(":")[0] for s in samples for f in s.fallbacks)),
        "samples": [asdict(s) for s in samples],
    }
