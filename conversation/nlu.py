"""Free text -> what the user accepted, rejected or wants: a deterministic lexicon matcher."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, Field

from agent.state import Attr, ConvState
from retrieval.catalog import Catalog

MAX_NGRAM = 4
_NEGATION = re.compile(
    r"\b(not|no|don'?t|do not|doesn'?t|without|anything but|except|hate|hates|dislike|avoid|never|"
    r"isn'?t|nothing|none|skip|other than|rather not|instead of|can'?t stand|cannot stand|sick of|tired of|"
    r"not a fan of)\b"
)
# A negation that follows what it negates: "war films are not my thing", "jazz isn't for me".
_POSTFIX_NEGATION = re.compile(
    r"\b(is|are|s|re)\s+(not|n'?t)\s+(really\s+)?(my thing|for me|my cup of tea|my style|my taste)\b|"
    r"\b(isn'?t|aren'?t)\s+(really\s+)?(my thing|for me|my cup of tea|my style|my taste)\b"
)
_CLAUSE_SPLIT = re.compile(r"[.;!?,]|\bbut\b|\bhowever\b")
_YES = re.compile(r"^\s*(yes|yeah|yep|yup|sure|ok|okay|please|definitely|of course|absolutely|y|sounds good)\b")
_NO = re.compile(r"^\s*(no|nope|nah|not really|n|never)\b")
_SKIP = re.compile(r"\b(doesn'?t matter|don'?t care|whatever|either|no preference|any is fine|not sure)\b")
_REJECT_SHOWN = re.compile(
    r"\b(none of (these|those|them)|not (these|those|them)|something else|others|seen (it|them|these|those)|"
    r"already seen|more|different)\b"
)


class Understanding(BaseModel):
    """What one user message said, in terms of the catalog's attributes."""

    accepted: list[Attr] = Field(default_factory=list)
    rejected: list[Attr] = Field(default_factory=list)
    skip_asked: bool = False
    reject_shown: bool = False
    wishes: list[str] = Field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": [str(a) for a in self.accepted],
            "rejected": [str(a) for a in self.rejected],
            "skip_asked": self.skip_asked,
            "reject_shown": self.reject_shown,
        }


@dataclass
class Lexicon:
    """Surface phrase -> attribute, built from the catalog's own values plus everyday synonyms."""

    phrases: dict[str, Attr] = field(default_factory=dict)
    stopwords: frozenset[str] = frozenset()

    @classmethod
    def from_catalog(cls, catalog: Catalog, *, min_tag_items: int = 2) -> Lexicon:
        spec = yaml.safe_load(resources.files("conversation").joinpath("lexicon.yaml").read_text("utf-8"))
        priority = {kind: rank for rank, kind in enumerate(spec["type_priority"])}
        stop = frozenset(spec["stopwords"])
        phrases: dict[str, Attr] = {}
        ranked = sorted(catalog.attribute_counts.items(), key=lambda kv: priority.get(kv[0], len(priority)))
        for kind, counts in ranked:
            for value, n in counts.items():
                if kind == "tag" and n < min_tag_items:
                    continue
                for form in _surface_forms(value):
                    if form not in stop and len(form) > 1:
                        phrases.setdefault(form, Attr(type=kind, value=value))
        for entry in spec["synonyms"]:
            if entry["value"] in catalog.attribute_counts.get(entry["type"], {}):
                for word in entry["words"]:
                    phrases[_normalise(word)] = Attr(type=entry["type"], value=entry["value"])
        return cls(phrases=phrases, stopwords=stop)

    def values(self) -> list[Attr]:
        """Every attribute value the matcher knows, by type then value."""
        return sorted(set(self.phrases.values()), key=lambda a: (a.type, a.value))

    def find(self, text: str) -> list[tuple[int, Attr]]:
        """Longest-match attribute mentions as (word offset, attribute), each word used once."""
        words = _normalise(text).split()
        found: list[tuple[int, Attr]] = []
        i = 0
        while i < len(words):
            for n in range(min(MAX_NGRAM, len(words) - i), 0, -1):
                phrase = " ".join(words[i : i + n])
                attr = self.phrases.get(phrase)
                if attr is not None and not (n == 1 and phrase in self.stopwords):
                    found.append((i, attr))
                    i += n
                    break
            else:
                i += 1
        return found


def understand(text: str, state: ConvState, lexicon: Lexicon) -> Understanding:
    """Read one message against the state: answers to the last question, attributes, negations."""
    lowered = text.lower().strip()
    result = Understanding()
    for clause in _clauses(lowered):
        negated_from = 0 if _POSTFIX_NEGATION.search(clause) else _negation_offset(clause)
        for offset, attr in lexicon.find(clause):
            bucket = result.rejected if negated_from is not None and offset >= negated_from else result.accepted
            if attr not in bucket:
                bucket.append(attr)
    # Said both ways ("no musicals, I can't stand singing" before the fix): the explicit "no" wins.
    result.accepted = [a for a in result.accepted if a not in result.rejected]
    if state.last_action == "ask" and state.last_asked is not None and not (result.accepted or result.rejected):
        if _SKIP.search(lowered):
            result.skip_asked = True
        elif _YES.match(lowered):
            result.accepted.append(state.last_asked)
        elif _NO.match(lowered):
            result.rejected.append(state.last_asked)
    if state.last_action == "recommend" and (_REJECT_SHOWN.search(lowered) or _NO.match(lowered)):
        result.reject_shown = True
    if lowered and not (result.accepted or result.rejected):
        result.wishes.append(text.strip()[:300])
    return result


def _clauses(text: str) -> list[str]:
    text = text.replace("anything but", "anything except")
    return [c for c in _CLAUSE_SPLIT.split(text) if c and c.strip()]


def has_negation(text: str) -> bool:
    """Whether the message negates anything ("not", "anything but", "no", "hate", ...)."""
    return _NEGATION.search(text.lower()) is not None


def _negation_offset(clause: str) -> int | None:
    """Word offset (in normalised words) where a negation starts in this clause, if any."""
    match = _NEGATION.search(clause)
    if match is None:
        return None
    return len(_normalise(clause[: match.start()]).split())


def _normalise(text: str) -> str:
    text = text.lower().replace("'", "")
    return re.sub(r"[^\w\-+&]+", " ", text).strip()


def _surface_forms(value: str) -> set[str]:
    base = _normalise(value)
    forms = {base, base.replace("-", " "), base.replace("-", "")}
    if base.endswith("s") and len(base) > 4:
        forms.add(base[:-1])
    return {f for f in forms if f}
