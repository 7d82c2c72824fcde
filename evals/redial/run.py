"""Score ReDial samples through the product: each context utterance is observed, then the service ranks."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from evals.jsonl import open_for_append, read_rows
from evals.redial.metrics import sample_sums, summarise

TOP_K = 50
Role = Literal["user", "assistant"]


class RankingService(Protocol):
    """The two calls of ConversationService the benchmark needs (plus start/end of a session)."""

    def start(self) -> str: ...
    def end(self, session_id: str) -> bool: ...
    def observe(self, session_id: str, text: str, *, role: Role) -> None: ...
    def rank(self, session_id: str, *, k: int) -> list[str]: ...


@dataclass(frozen=True)
class Sample:
    index: int
    dialog_id: str
    turn_id: int
    context: tuple[str, ...]
    labels: tuple[str, ...]  # "Title (Year)" as ReDial writes them


def load_samples(path: Path, *, limit: int | None = None) -> list[Sample]:
    out = []
    with open(path, encoding="utf-8") as f:
        for index, line in enumerate(f):
            if limit is not None and index >= limit:
                break
            row = json.loads(line)
            out.append(Sample(index, str(row["dialog_id"]), int(row["turn_id"]), tuple(row["context"]),
                              tuple(_name(r) for r in row["rec"])))
    return out


def roles(context: Sequence[str]) -> list[Role]:
    """Who said each utterance: the last one is the seeker's (the recommender answers it), then they alternate.

    The processed file merges a speaker's consecutive messages and pads with "" so the turns alternate; on
    valid_data.jsonl (senderWorkerId vs respondentWorkerId) this rule matches every sample checked.
    """
    n = len(context)
    return ["user" if (n - 1 - i) % 2 == 0 else "assistant" for i in range(n)]


def score_sample(service: RankingService, sample: Sample, names: dict[str, str]) -> dict[str, Any]:
    """One sample's ranking and its per-label sums; labels named earlier in the context are marked."""
    session = service.start()
    try:
        for text, role in zip(sample.context, roles(sample.context)):
            if text.strip():
                service.observe(session, text, role=role)
        ranked = service.rank(session, k=TOP_K)
    finally:
        service.end(session)
    ranked_names = [names.get(i, i) for i in ranked]
    said = " ".join(" ".join(u.split()) for u in sample.context).lower()
    in_context = [label.lower() in said for label in sample.labels]
    fresh = [label for label, named in zip(sample.labels, in_context) if not named]
    return {"index": sample.index, "dialog_id": sample.dialog_id, "turn_id": sample.turn_id,
            "labels": list(sample.labels), "in_context": in_context, "ranked": ranked[:TOP_K],
            "sums": sample_sums(ranked_names, sample.labels), "sums_fresh": sample_sums(ranked_names, fresh)}


def done_rows(path: Path) -> dict[int, dict]:
    """Rows already scored in an earlier run (a torn last line from a crash is ignored)."""
    return {int(index): row for index, row in read_rows(path, key="index").items()}


def run(service: RankingService, samples: Sequence[Sample], names: dict[str, str], *, out: Path,
        on_progress: Callable[[int], None] = lambda n: None) -> list[dict]:
    """Score every sample not yet in `out`, appending each as one fsynced JSON line; returns all rows."""
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = done_rows(out)
    on_progress(sum(1 for s in samples if s.index in rows))
    with open_for_append(out) as sink:
        for sample in _todo(samples, rows):
            row = score_sample(service, sample, names)
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
            rows[sample.index] = row
            on_progress(1)
    return [rows[s.index] for s in samples if s.index in rows]


def _todo(samples: Sequence[Sample], rows: dict[int, dict]) -> Iterator[Sample]:
    return (s for s in samples if s.index not in rows)


def summary(rows: Sequence[dict], *, seed: int = 0) -> dict[str, Any]:
    """All-label metrics with CIs, the share of labels already named, and metrics on the other labels."""
    labels = sum(len(r["labels"]) for r in rows)
    named = sum(sum(r["in_context"]) for r in rows)
    fresh_rows = [r["sums_fresh"] for r in rows if r["sums_fresh"]["count"] > 0]
    return {"samples": len(rows), "labels": labels, "labels_in_context": named,
            "share_in_context": named / labels if labels else 0.0,
            "all": summarise([r["sums"] for r in rows], seed=seed),
            "not_in_context": summarise(fresh_rows, seed=seed) if fresh_rows else {}}


def _name(title: str) -> str:
    return " ".join(title.split())
