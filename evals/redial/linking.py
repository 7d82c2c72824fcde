"""Linking accuracy on ReDial messages: each @id put back as a person would type the title, then linked."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conversation.linker import EntityLinker
from retrieval.catalog import Catalog

_AT = re.compile(r"@(\d+)")
_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")


def typed_title(title: str, rng: random.Random) -> str:
    """The title without its year, lower-cased half of the time (seeded)."""
    bare = _YEAR.sub("", " ".join(title.split())).strip()
    return bare.lower() if rng.random() < 0.5 else bare


def messages(path: Path, catalog_ids: dict[str, str], *, seed: int = 0) -> Iterator[tuple[str, str, set[str], int]]:
    """(typed message, the message as written, the catalog ids it names, mentions outside the catalog)."""
    rng = random.Random(seed)
    with open(path, encoding="utf-8") as f:
        for line in f:
            dialog = json.loads(line)
            mentions = dialog.get("movieMentions") or {}
            for message in dialog["messages"]:
                truth: set[str] = set()
                unknown = 0

                def put_back(match: re.Match) -> str:
                    nonlocal unknown
                    title = mentions.get(match.group(1))
                    if not title:
                        return match.group(0)
                    item_id = catalog_ids.get(" ".join(title.split()))
                    if item_id is None:
                        unknown += 1
                    else:
                        truth.add(item_id)
                    return typed_title(title, rng)

                text = _AT.sub(put_back, message["text"])
                yield text, message["text"], truth, unknown


def evaluate(path: Path, catalog: Catalog, *, seed: int = 0, examples: int = 15) -> dict[str, Any]:
    """Precision and recall of linked item ids against the true ids, over all messages."""
    linker = EntityLinker.from_catalog(catalog)
    ids = {" ".join(item.title.split()): item_id for item_id, item in catalog.items.items()}
    bare = {item_id: _YEAR.sub("", " ".join(item.title.split())).lower() for item_id, item in catalog.items.items()}
    tp = fp = fn = n_messages = unknown = other_version = unmarked = 0
    misses: list[dict] = []
    wrong: list[dict] = []
    for text, written, truth, outside in messages(path, ids, seed=seed):
        predicted = {m.item_id for m in linker.link(text) if m.kind == "item" and m.item_id}
        n_messages += 1
        unknown += outside
        tp += len(predicted & truth)
        fp += len(predicted - truth)
        true_titles = {bare[i] for i in truth}
        other_version += sum(1 for i in predicted - truth if bare[i] in true_titles)
        unmarked += sum(1 for i in predicted - truth if bare[i] not in true_titles and bare[i] in written.lower())
        fn += len(truth - predicted)
        if truth - predicted and len(misses) < examples:
            misses.append({"text": text, "missed": [catalog.items[i].title for i in truth - predicted]})
        if predicted - truth and len(wrong) < examples:
            wrong.append({"text": text, "linked": [catalog.items[i].title for i in predicted - truth]})
    return {"messages": n_messages, "true_mentions": tp + fn, "linked": tp + fp, "correct": tp,
            "mentions_outside_catalog": unknown, "seed": seed,
            "wrong_version": other_version, "linked_unmarked_title": unmarked,
            "precision": tp / (tp + fp) if tp + fp else 0.0, "recall": tp / (tp + fn) if tp + fn else 0.0,
            "missed_examples": misses, "wrong_examples": wrong}
