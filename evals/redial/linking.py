"""Linking accuracy on ReDial messages: each @id put back as a person would type the title, then linked.

Two scores, both over every message of the file:
- strict: per message, the set of linked item ids against the set of ids its `@id` markers name. A title the
  person typed out without a marker counts as a false positive when linked, even when it is right.
- documented: the same, except that a link whose span overlaps no marked mention and whose item is in the
  dialog's own `movieMentions` (the movies ReDial's annotation says the dialog talks about) counts as correct.
  Unmarked links to movies outside that list stay errors; a sample of them is listed for a check by hand.
Recall is the same in both. Dialogs with even and odd `conversationId` are also scored apart: the linker's
rules were chosen by looking at errors on the even half only, so the odd half is the held-out check.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from conversation.linker import EntityLinker
from retrieval.catalog import Catalog

_AT = re.compile(r"@(\d+)")
_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")


@dataclass(frozen=True)
class Message:
    dialog: str
    text: str  # the message with every marker put back as a typed title
    written: str  # the message as ReDial stores it
    marked: tuple[tuple[int, int, str | None], ...]  # (start, end, catalog id or None if outside the catalog)
    talked_about: frozenset[str]  # catalog ids of the dialog's movieMentions


def typed_title(title: str, rng: random.Random) -> str:
    """The title without its year, lower-cased half of the time (seeded)."""
    bare = _YEAR.sub("", " ".join(title.split())).strip()
    return bare.lower() if rng.random() < 0.5 else bare


def messages(path: Path, catalog_ids: dict[str, str], *, seed: int = 0) -> Iterator[Message]:
    """Every message of the file with its markers put back as typed titles and their spans."""
    rng = random.Random(seed)
    with open(path, encoding="utf-8") as f:
        for line in f:
            dialog = json.loads(line)
            # ReDial stores "?" in titles as "%3F" ("Dude, Where's My Car%3F"): a person types "?".
            titles = {k: " ".join(unquote(v).split()) for k, v in (dialog.get("movieMentions") or {}).items() if v}
            talked_about = frozenset(catalog_ids[t] for t in titles.values() if t in catalog_ids)
            for message in dialog["messages"]:
                written, parts, marked, at = message["text"], [], [], 0
                for match in _AT.finditer(written):
                    title = titles.get(match.group(1))
                    if not title:
                        continue
                    parts.append(written[at:match.start()])
                    start = sum(len(p) for p in parts)
                    parts.append(typed_title(title, rng))
                    marked.append((start, start + len(parts[-1]), catalog_ids.get(title)))
                    at = match.end()
                parts.append(written[at:])
                yield Message(str(dialog.get("conversationId", "")), "".join(parts), written, tuple(marked),
                              talked_about)


def half(dialog: str) -> str:
    return "even" if dialog.isdigit() and int(dialog) % 2 == 0 else "odd"


def score(message: Message, linked: list[tuple[int, int, str]], bare: dict[str, str],
          film: dict[str, tuple]) -> tuple[Counter, dict]:
    """Counts for one message and its labelled links: linked is (start, end, item id) per item mention."""
    truth = {i for _s, _e, i in message.marked if i}
    predicted = {i for _s, _e, i in linked}
    c: Counter = Counter(messages=1, true_mentions=len(truth), linked=len(predicted), correct=len(predicted & truth),
                         mentions_outside_catalog=sum(1 for *_x, i in message.marked if i is None))
    true_titles, true_films = {bare[i] for i in truth}, {film[i] for i in truth}
    kinds: dict[str, str] = {}
    for start, end, item in linked:
        if item in truth or item in kinds:
            continue
        overlaps = any(s < end and start < e for s, e, _i in message.marked)
        if film[item] in true_films:  # the catalog lists the marked film twice (same title, same people)
            kinds[item] = "duplicate_entry"
        elif overlaps:
            kinds[item] = "other_version" if bare[item] in true_titles else "wrong_in_mention"
        else:
            kinds[item] = "unmarked_talked_about" if item in message.talked_about else "unmarked_other"
    c.update(kinds.values())
    c["missed"] = sum(1 for i in truth if film[i] not in {film[p] for p in predicted})  # duplicates count as found
    return c, kinds


def same_film_key(item, bare_title: str) -> tuple:
    """Entries with the same title and the same non-empty directors and stars are one film listed twice."""
    people = tuple(tuple(sorted(item.attributes.get(k, []))) for k in ("director", "star"))
    return (bare_title, people) if any(people) else (item.id,)


def rates(c: Counter) -> dict[str, Any]:
    linked, true = c["linked"], c["true_mentions"]
    confirmed = c["correct"] + c["duplicate_entry"] + c["unmarked_talked_about"]
    in_mention = c["linked"] - c["unmarked_talked_about"] - c["unmarked_other"]  # links overlapping a marker
    return {**{k: c[k] for k in ("messages", "true_mentions", "linked", "correct", "mentions_outside_catalog",
                                 "duplicate_entry", "other_version", "wrong_in_mention", "unmarked_talked_about",
                                 "unmarked_other")},
            "precision": c["correct"] / linked if linked else 0.0,
            "recall": c["correct"] / true if true else 0.0,
            "documented_precision": confirmed / linked if linked else 0.0,
            "documented_recall": (c["true_mentions"] - c["missed"]) / true if true else 0.0,
            "marked_precision": c["correct"] / in_mention if in_mention else 0.0}


def evaluate(path: Path, catalog: Catalog, *, seed: int = 0, examples: int = 15, sample: int = 30) -> dict[str, Any]:
    """Strict and documented precision and recall of linked item ids, for all dialogs and each half."""
    linker = EntityLinker.from_catalog(catalog)
    ids = {" ".join(item.title.split()): item_id for item_id, item in catalog.items.items()}
    bare = {item_id: _YEAR.sub("", " ".join(item.title.split())).lower() for item_id, item in catalog.items.items()}
    film = {i: same_film_key(item, bare[i]) for i, item in catalog.items.items()}
    counts = {"all": Counter(), "even": Counter(), "odd": Counter()}
    shown: dict[str, list[dict]] = {"missed": [], "wrong": [], "unmarked_other": []}
    for message in messages(path, ids, seed=seed):
        linked = [(m.start, m.end, m.item_id) for m in linker.link(message.text) if m.kind == "item" and m.item_id]
        c, kinds = score(message, linked, bare, film)
        counts["all"].update(c)
        counts[half(message.dialog)].update(c)
        if half(message.dialog) != "even":  # examples only from the half the rules were read on
            continue
        truth = {i for *_x, i in message.marked if i}
        missed = truth - {i for *_x, i in linked}
        if missed:
            shown["missed"].append({"text": message.text, "titles": [catalog.items[i].title for i in missed]})
        for name, wanted in (("wrong", ("other_version", "wrong_in_mention")), ("unmarked_other", ("unmarked_other",))):
            titles = [catalog.items[i].title for i, k in kinds.items() if k in wanted]
            if titles:
                shown[name].append({"text": message.text, "titles": titles, "dialog": message.dialog})
    rng = random.Random(seed)
    checked = rng.sample(shown["unmarked_other"], min(sample, len(shown["unmarked_other"])))
    return {**rates(counts["all"]), "seed": seed, "halves": {h: rates(counts[h]) for h in ("even", "odd")},
            "missed_examples": shown["missed"][:examples], "wrong_examples": shown["wrong"][:examples],
            "unmarked_sample": checked}
