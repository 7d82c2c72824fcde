"""Deterministic checks of a recommendation lead before the person sees it.

Each check returns the kinds of violation it finds; the reply step re-asks once with the reason and then
answers with the template. What is checked (issue: replies that are true):

- voice: the lead speaks to "you", never about "the user";
- foreign_title: it names no catalog title that is not on the list;
- contradiction: it states no accepted value as unwanted, and no rejected value as wanted;
- unsupported_attribute: every attribute value it cites is carried by the listed items (by all of them
  when it says "all", "both" or "each"), unless the person asked for or against that value;
- invented_fact: no year that is not a listed item's, and no "newer/older/recent" claims, which the
  catalog cannot back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from agent.state import Action, ConvState

KINDS = ("voice", "foreign_title", "contradiction", "unsupported_attribute", "invented_fact")
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_THE_USER = re.compile(r"\b(?:the )?users?\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b(?!s)")
_COMPARATIVE = re.compile(r"\b(newer|older|more recent|most recent|latest|recent (?:addition|release|film|movie)s?|"
                          r"newest|oldest|brand[- ]new|just (?:came out|released))\b", re.IGNORECASE)
_ALL = re.compile(r"\b(all|both|each|every one)\b", re.IGNORECASE)
_NEGATIVE = re.compile(r"\b(dislike[sd]?|don'?t (?:like|want|enjoy)|do not (?:like|want|enjoy)|hate[sd]?|avoid(?:s|ed)?|"
                       r"not (?:a fan|into|interested)|aren'?t (?:into|a fan)|isn'?t your|not your|steer clear)\b",
                       re.IGNORECASE)
_POSITIVE = re.compile(r"\b(love[sd]?|like[sd]?|enjoy(?:s|ed)?|fan of|into|wanted|want|asked for|in the mood for|"
                       r"favou?rite)\b", re.IGNORECASE)
_NOT = re.compile(r"\b(no|not|without|n't|never|free of|skip(?:ping)?|instead of|rather than|away from)\b",
                  re.IGNORECASE)


@dataclass(frozen=True)
class Violation:
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _has_phrase(words: list[str], phrase: str) -> bool:
    """Does the word list contain the phrase's words in a row (a plural -s counts)?"""
    target = _words(phrase)
    if not target:
        return False
    n = len(target)
    for i in range(len(words) - n + 1):
        window = words[i:i + n]
        if all(w in _forms(t) for w, t in zip(window, target)):
            return True
    return False


def _forms(word: str) -> set[str]:
    """A word and its plural (comedy/comedies, thriller/thrillers) or singular."""
    forms = {word, word + "s", word + "es"}
    if word.endswith("y"):
        forms.add(word[:-1] + "ies")
    if word.endswith("s"):
        forms.add(word[:-1])
    return forms


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+|\s+(?:but|while|whereas)\s+", text) if s.strip()]


def check_lead(text: str, action: Action, state: ConvState, *, item_values: Mapping[str, Iterable[str]],
               vocabulary: Iterable[str], years: Mapping[str, str] | None = None,
               titles_in: Callable[[str], list[str]] | None = None) -> list[Violation]:
    """The violations in a recommendation lead. `item_values`: each listed item's attribute values;
    `vocabulary`: the attribute values worth checking (genres, moods, decades...); `years`: item id ->
    release year; `titles_in`: the catalog item ids a text names (the entity linker)."""
    out: list[Violation] = []
    if _THE_USER.search(text):
        out.append(Violation("voice", "speaks of the user, not to them"))
    listed = {r.item_id for r in action.items}
    if titles_in is not None:
        foreign = [i for i in titles_in(text) if i not in listed]
        if foreign:
            out.append(Violation("foreign_title", f"names a title not on the list ({foreign[0]})"))
    out += _contradictions(text, state)
    out += _unsupported(text, action, state, item_values, vocabulary)
    out += _invented(text, action, years or {})
    return out


def _contradictions(text: str, state: ConvState) -> list[Violation]:
    out = []
    for sentence in _sentences(text):
        words = _words(sentence)
        negative = bool(_NEGATIVE.search(sentence))
        positive = bool(_POSITIVE.search(sentence)) and not negative and not _NOT.search(sentence)
        for attr in state.accepted:
            if negative and _has_phrase(words, attr.value):
                out.append(Violation("contradiction", f"states {attr.value!r}, which you asked for, as unwanted"))
        for attr in state.rejected:
            if positive and _has_phrase(words, attr.value):
                out.append(Violation("contradiction", f"states {attr.value!r}, which you declined, as wanted"))
    return out


def _unsupported(text: str, action: Action, state: ConvState, item_values: Mapping[str, Iterable[str]],
                 vocabulary: Iterable[str]) -> list[Violation]:
    asked = {a.value.lower() for a in (*state.accepted, *state.rejected)}
    values = {r.item_id: {v.lower() for v in item_values.get(r.item_id, ())} for r in action.items}
    out = []
    for sentence in _sentences(text):
        words = _words(sentence)
        every = bool(_ALL.search(sentence))
        for value in vocabulary:
            low = value.lower()
            if low in asked or not _has_phrase(words, low):
                continue
            carriers = [i for i, have in values.items() if low in have]
            if (every and len(carriers) < len(values)) or not carriers:
                scope = "every listed item" if every else "any listed item"
                out.append(Violation("unsupported_attribute", f"cites {value!r}, which {scope} does not have"))
    return out


def _invented(text: str, action: Action, years: Mapping[str, str]) -> list[Violation]:
    out = []
    known = {years[r.item_id] for r in action.items if r.item_id in years}
    known |= {m for r in action.items for m in _YEAR.findall(r.title)}
    for year in _YEAR.findall(text):
        if year not in known:
            out.append(Violation("invented_fact", f"gives the year {year}, which no listed item has"))
    match = _COMPARATIVE.search(text)
    if match:
        out.append(Violation("invented_fact", f"claims {match.group(0)!r}, which the catalog cannot back"))
    return out
