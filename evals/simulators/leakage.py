"""Leakage guard: find a target title (fuzzily) in a simulated user's text, and redact it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

REDACTED = "that one"
THRESHOLD = 0.88
SHORT_TITLE_CHARS = 5  # shorter titles ("Up", "Heat") only match as the exact, capitalised word
_YEAR = re.compile(r"\(\s*\d{4}(?:\s*[-–]\s*\d{4})?\s*\)")
_PARENS = re.compile(r"\(([^)]*)\)")
_TRAILING_ARTICLE = re.compile(r"^(.*),\s*(the|a|an|les|la|le|il|el|der|die|das)$", re.IGNORECASE)
_WORD = re.compile(r"[\w']+", re.UNICODE)
_ARTICLES = ("the ", "a ", "an ")


@dataclass(frozen=True)
class Leak:
    """Where a title was found: the variant that matched and the character span in the text."""

    title: str
    start: int
    end: int
    score: float


def _plain(text: str) -> str:
    return " ".join(w.lower() for w in _WORD.findall(text))


def title_variants(title: str) -> list[str]:
    """Normalised forms of a catalog title: year dropped, "Shining, The" -> "the shining", aka names, no article."""
    akas = [m.strip() for m in _PARENS.findall(_YEAR.sub("", title))]
    main = _PARENS.sub("", _YEAR.sub("", title)).strip()
    forms = []
    for raw in [main, *akas]:
        raw = re.sub(r"^(a\.k\.a\.|aka)\s+", "", raw.strip(), flags=re.IGNORECASE)
        match = _TRAILING_ARTICLE.match(raw)
        if match:
            raw = f"{match.group(2)} {match.group(1)}"
        plain = _plain(raw)
        if plain:
            forms.append(plain)
            for article in _ARTICLES:
                if plain.startswith(article) and len(plain) - len(article) >= SHORT_TITLE_CHARS:
                    forms.append(plain[len(article):])
    return list(dict.fromkeys(forms))


def _windows(text: str, size: int) -> list[tuple[str, int, int]]:
    words = list(_WORD.finditer(text))
    out = []
    for i in range(max(len(words) - size + 1, 0)):
        chunk = words[i : i + size]
        out.append((" ".join(w.group().lower() for w in chunk), chunk[0].start(), chunk[-1].end()))
    return out


def _short_match(text: str, title: str, variant: str) -> Leak | None:
    """A short title leaks only as the exact word(s) with the title's own capitals ("Up", not "look up")."""
    shown = _PARENS.sub("", _YEAR.sub("", title)).strip()
    match = re.search(rf"(?<![\w']){re.escape(shown)}(?![\w'])", text)
    return Leak(variant, match.start(), match.end(), 1.0) if match else None


def find_leak(text: str, titles: list[str], *, threshold: float = THRESHOLD) -> Leak | None:
    """The best fuzzy occurrence of any title in `text`, or None."""
    best: Leak | None = None
    for title in titles:
        for variant in title_variants(title):
            if len(variant) < SHORT_TITLE_CHARS:
                found = _short_match(text, title, variant)
                if found and (best is None or found.score > best.score):
                    best = found
                continue
            size = len(variant.split())
            for n in {max(size - 1, 1), size, size + 1}:
                for chunk, start, end in _windows(text, n):
                    score = SequenceMatcher(None, chunk, variant).ratio()
                    if score >= threshold and (best is None or score > best.score):
                        best = Leak(variant, start, end, score)
    return best


def redact(text: str, titles: list[str]) -> tuple[str, int]:
    """Replace every occurrence of the titles; returns the text and how many spans were replaced."""
    count = 0
    while (leak := find_leak(text, titles)) is not None and count < 20:
        text = text[: leak.start] + REDACTED + text[leak.end :]
        count += 1
    return text, count
