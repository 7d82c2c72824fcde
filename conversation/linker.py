"""Entity linker: catalog titles and people named in free text, with the sentiment of their clause."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from conversation.sentiment import Sentiment, sentiment_of
from conversation.titles import ARTICLES, duplicates, normalise, ordinary_words, recency_weighted, title_aliases, tokens
from agent.state import Attr
from retrieval.catalog import Catalog

PERSON_TYPES = frozenset({"director", "actor", "actress", "star", "writer", "cast", "artist", "author", "composer",
                          "creator", "producer", "person"})
# Function words: a title made only of these ("It", "Her", "Up") is never linked in lower case.
STOPWORDS = frozenset(
    "a an the and or of in on at to for from by with it its is are was be i me my you your he him his she her we "
    "us our they them their this that these those who what where when why how up down out off over under all any "
    "some no not yes so as if but do does did than then too very just one two us here there now yeah ok okay hi "
    "hello thanks please sure well oh wow lol".split())
FUNCTION_WORDS = STOPWORDS | ENGLISH_STOP_WORDS
ARTICLES = ("the", "a", "an", "les", "la", "le", "l'", "il", "el", "die", "das", "der", "los", "las", "un", "une")
CUES = frozenset("like liked likes love loved loves enjoyed enjoy seen saw watched watch rewatched than hated hate "
                 "disliked favorite favourite recommend adore adored about including called titled".split())
CUE_PAIRS = frozenset({("similar", "to"), ("such", "as"), ("fan", "of"), ("lines", "of"), ("same", "as")})
LIST_JOINERS = frozenset({"and", "or", "&", "nor", ","})
MIN_FUZZY_TOKEN = 5
MIN_RARE = 4  # a rare word this long is a title even in lower case and without a cue ...
WELL_KNOWN = 0.5  # ... if its item is at least as popular as the median item with interactions
# Which version of a title people mean: interactions weighted by age, halving every quarter of a year before the
# newest one (chosen on even ReDial dialogs; 0.1 to 0.5 years gave the same choices there).
AGE_WORDS = {"new": 1, "newer": 1, "latest": 1, "remake": 1, "original": -1, "older": -1}  # 1: the newest version
KIND_SCORE = {0: 1.0, 1: 0.9, 2: 0.8}  # full title, title without its article, the part before a subtitle
_WORD = re.compile(r"[^\W_]+")
_YEAR_TOKEN = re.compile(r"(18[89]\d|19\d\d|20[0-3]\d)$")
_CLAUSE_END = re.compile(r"[.;!?,]|\bbut\b|\bhowever\b")


@dataclass(frozen=True)
class Mention:
    kind: Literal["item", "attribute"]
    surface: str
    start: int
    end: int
    item_id: str | None = None
    attr: Attr | None = None
    sentiment: Sentiment = "liked"
    score: float = 1.0


@dataclass
class _Entry:
    """What one normalised alias can mean: item ids (by alias kind) or an attribute."""

    items: dict[int, list[str]] = field(default_factory=dict)
    attr: Attr | None = None
    credits: int = 0  # items the person (attr) is credited on


@dataclass(frozen=True)
class _Candidate:
    start: int  # token offsets
    end: int
    key: str
    kind: int
    item_id: str | None
    attr: Attr | None
    score: float
    risky: bool
    year: bool
    attribute_word: bool = False
    strict: bool = False  # every word is an ordinary word: capitals and a cue together, or a year or quotes
    options: tuple[str, ...] = ()  # the other versions the title could mean, when no year chose one
    known: bool = False  # a well-known item: a cue alone makes its everyday-word title a title ("I love hook")


class EntityLinker:
    """Finds catalog titles and people in text; built once per catalog."""

    def __init__(self, entries: dict[str, _Entry], *, years: dict[str, int | None], popularity: dict[str, float],
                 surnames: dict[str, Attr], attribute_words: frozenset[str] = frozenset(),
                 common: frozenset[str] | None = None, current: dict[str, float] | None = None,
                 people: dict[str, frozenset[str]] | None = None) -> None:
        self.current = current or {}  # recency-weighted popularity: which version people talk about now
        self.people = people or {}  # item id -> normalised names of the people credited on it
        rated = sorted(n for n in popularity.values() if n > 0)
        self.well_known = rated[int(len(rated) * WELL_KNOWN)] if rated else float("inf")
        self.attribute_words = attribute_words
        self.common = common  # None: the catalog has too little text to tell ordinary words from names
        self.entries = entries
        self.years = years
        self.popularity = popularity
        self.surnames = surnames
        self.prefixes: set[str] = set()
        for key in entries:
            end = key.rfind(" ")
            while end > 0 and key[:end] not in self.prefixes:  # a known prefix has its own prefixes already
                self.prefixes.add(key[:end])
                end = key.rfind(" ", 0, end)
        self.vocab = {w for k in entries for w in k.split()}
        self.deletions: dict[str, set[str]] = {}
        for word in self.vocab:
            if len(word) >= MIN_FUZZY_TOKEN and not word.isdigit():
                for variant in _deletions(word):
                    self.deletions.setdefault(variant, set()).add(word)

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> EntityLinker:
        entries: dict[str, _Entry] = {}
        years: dict[str, int | None] = {}
        titles = {}
        people = {item.id: frozenset(normalise(v) for kind, vs in item.attributes.items() if kind in PERSON_TYPES
                                     for v in vs) for item in catalog.items.values()}
        for item in catalog.items.values():
            year, aliases = title_aliases(item.title)
            if year is None and item.attributes.get("year"):
                year = int(item.attributes["year"][0]) if item.attributes["year"][0].isdigit() else None
            years[item.id], titles[item.id] = year, aliases
        popularity = dict(catalog.popularity)
        current = recency_weighted(catalog.splits.get("train", catalog.interactions))
        for duplicate, kept in duplicates(catalog, titles, years, people, popularity).items():
            popularity[kept] = popularity.get(kept, 0.0) + popularity.pop(duplicate, 0.0)
            current[kept] = current.get(kept, 0.0) + current.pop(duplicate, 0.0)
            del titles[duplicate]  # the catalog lists the film twice: only one entry is linked
        for item_id, aliases in titles.items():
            item = catalog.items[item_id]
            for alias, kind in aliases:
                ids = entries.setdefault(alias, _Entry()).items.setdefault(kind, [])
                if item.id not in ids:
                    ids.append(item.id)
        surname_count: dict[str, list[Attr]] = {}
        for kind, counts in catalog.attribute_counts.items():
            if kind not in PERSON_TYPES:
                continue
            for value in counts:
                key = normalise(value)
                if len(key.split()) < 2:
                    continue
                entry = entries.setdefault(key, _Entry())
                entry.attr = entry.attr or Attr(type=kind, value=value)
                entry.credits += counts[value]
                surname_count.setdefault(key.split()[-1], []).append(entry.attr)
        common = ordinary_words(catalog)
        # A surname that is also an everyday word ("Good", "Great", "Stone") is not a name on its own.
        surnames = {s: attrs[0] for s, attrs in surname_count.items()
                    if len({a.value for a in attrs}) == 1 and len(s) >= 3 and s not in STOPWORDS
                    and s not in (common or ()) and s not in ENGLISH_STOP_WORDS and s not in _EVERYDAY}
        attribute_words = frozenset(normalise(v) for kind, counts in catalog.attribute_counts.items()
                                    if kind not in PERSON_TYPES for v in counts)
        return cls(entries, years=years, popularity=popularity, surnames=surnames,
                   attribute_words=attribute_words, common=common, current=current, people=people)

    def link(self, text: str) -> list[Mention]:
        """Non-overlapping mentions in text order, each with the sentiment of its clause."""
        toks = tokens(text)
        words = [self._correct(w) for w, _s, _e in toks]
        candidates = [c for c in self._candidates(text, toks, words)
                      if c is not None and not _in_a_word(text, toks, c)]
        chosen = _select([c for c in candidates if not c.risky or _evidence(text, toks, c)], [])
        listed = [c for c in candidates if c.risky and _follows_list(text, toks, c, chosen)]
        chosen = _select(listed, chosen)
        named = {normalise(c.attr.value) for c in candidates if c.attr is not None}
        chosen = [self._with_people(c, named) for c in chosen]
        mentions = [self._mention(text, toks, c) for c in sorted(chosen, key=lambda c: c.start)]
        return _with_sentiment(text, mentions)

    def _well_known(self, entry: _Entry) -> bool:
        """A title with as many interactions as the median item that has any."""
        return any(self.popularity.get(i, 0.0) >= self.well_known for ids in entry.items.values() for i in ids)

    def _with_people(self, c: _Candidate, named: set[str]) -> _Candidate:
        """'Home Again with Reese Witherspoon': a person named in the message picks the version crediting them."""
        credited = [i for i in c.options if self.people.get(i, frozenset()) & named]
        if not credited or c.item_id in credited:
            return c
        return replace(c, item_id=max(credited, key=self._rank))

    def _correct(self, word: str) -> tuple[str, str]:
        """(the word, its one-edit correction to a title word, or the word itself)."""
        if word in self.vocab or len(word) < MIN_FUZZY_TOKEN or word.isdigit():
            return word, word
        options = set(self.deletions.get(word, ()))
        for variant in _deletions(word):
            options |= {variant} & self.vocab
            options |= self.deletions.get(variant, set())
        options = {o for o in options if o.rstrip("s") != word.rstrip("s")}  # a plural is not a typo
        return word, (min(options) if len(options) == 1 else word)

    def _candidates(self, text: str, toks, words):
        for i in range(len(words)):
            for j in range(i + 1, len(words) + 1):
                exact = " ".join(w for w, _c in words[i:j])
                fixed = " ".join(c for _w, c in words[i:j])
                if exact not in self.prefixes and exact not in self.entries and fixed not in self.prefixes \
                        and fixed not in self.entries:
                    break
                for key, fuzzy in ((exact, False), (fixed, True)):
                    if key in self.entries and not (fuzzy and key == exact):
                        yield self._resolve(toks, i, j, key, fuzzy)
            if words[i][0] in self.surnames and text[toks[i][1]].isupper() and not _sentence_start(text, toks[i][1]):
                # A surname alone counts only written with a capital ("Nolan"), and only if one person has it.
                yield _Candidate(i, i + 1, words[i][0], 0, None, self.surnames[words[i][0]], 0.7, False, False)

    def _resolve(self, toks, i: int, j: int, key: str, fuzzy: bool) -> _Candidate | None:
        entry = self.entries[key]
        content = [w for w in key.split() if w not in STOPWORDS]
        ordinary = self.common is not None and bool(content) and all(w in self.common for w in content)
        # One word is a title on its own only if it is a rare word ("Jumanji", "the Goonies"), never an everyday
        # one ("Frozen", "the Road"); without text to tell them apart, every one-word title needs evidence.
        # "the Shining": an article and an ordinary word, but not a phrase the descriptions use ("the road")
        word = content[0] if len(content) == 1 and len(key.split()) == 2 and key.split()[0] in ARTICLES else None
        rare = len(content) == 1 and self.common is not None and (word and key or content[0]) not in self.common \
            and len(content[0]) >= MIN_RARE and not content[0].isdigit() and content[0] not in ENGLISH_STOP_WORDS \
            and key not in self.attribute_words and content[0] not in self.attribute_words
        risky = (len(content) <= 1 and not (rare and self._well_known(entry))) or len(key.replace(" ", "")) <= 3 \
            or all(w in FUNCTION_WORDS for w in key.split())
        strict = ordinary and len(content) == 1  # "Loved", "Life": an ordinary word needs capitals and a cue
        if fuzzy and (len(content) < 2 or len(key.replace(" ", "")) < 8):  # one word one edit away: too many
            return None
        year = int(toks[j][0]) if j < len(toks) and _YEAR_TOKEN.match(toks[j][0]) else None
        before = int(toks[i - 1][0]) if i > 0 and _YEAR_TOKEN.match(toks[i - 1][0]) else None  # "the 2017 It"
        kind = min(entry.items, default=0)
        if not entry.items or (entry.attr is not None and year is None and (kind == 2 or entry.credits >= 2)):
            # A person's name beats the start of a title ("Kevin Hart: Laugh at My Pain") and a title that is
            # the name of someone credited on several items, unless a year says it is the film.
            return _Candidate(i, j, key, 0, None, entry.attr, 0.8 if fuzzy else 1.0, False, False)
        age = AGE_WORDS.get(toks[i - 1][0]) if i > 0 else None
        picked = self._pick(entry.items[kind], year or before, partial=kind == 2, age=age)
        if picked is None:
            return None
        item_id, score = picked
        score *= KIND_SCORE[kind] * (0.85 if fuzzy else 1.0)
        matched_year = year is not None and self.years.get(item_id) is not None and abs(self.years[item_id] - year) <= 1
        options = tuple(entry.items[kind]) if year is None and before is None and age is None and kind != 2 else ()
        return _Candidate(i, j + (1 if matched_year else 0), key, kind, item_id, None, score, risky, matched_year,
                          key in self.attribute_words, strict, options, self._well_known(entry))

    def _rank(self, item_id: str) -> tuple:
        """How likely a person means this version: talked about lately, then overall, then a dated, newer entry."""
        year = self.years.get(item_id)
        return self.current.get(item_id, 0.0), self.popularity.get(item_id, 0.0), year is not None, year or 0

    def _pick(self, ids: list[str], year: int | None, *, partial: bool, age: int | None = None
              ) -> tuple[str, float] | None:
        """The item a title means: the year given, else the likeliest version (a partial title only if dominant)."""
        if year is not None:
            for slack in (0, 1):
                near = [i for i in ids if self.years.get(i) is not None and abs(self.years[i] - year) <= slack]
                if near:
                    return max(near, key=self._rank), 1.0
        if len(ids) == 1:
            return ids[0], 1.0
        dated = [i for i in ids if self.years.get(i) is not None]
        if age is not None and len(dated) > 1 and not partial:  # "the new Ghostbusters", "the original It"
            return max(dated, key=lambda i: (age * self.years[i], self._rank(i))), 1.0
        if partial:
            counts = sorted((self.popularity.get(i, 0.0) for i in ids), reverse=True)
            if counts[0] < 2 * counts[1] + 1:
                return None
            return max(ids, key=lambda i: self.popularity.get(i, 0.0)), 1.0
        first, second = sorted(ids, key=self._rank, reverse=True)[:2]
        return first, 1.0 if self._rank(first)[:2] > self._rank(second)[:2] else 0.9

    def _mention(self, text: str, toks, c: _Candidate) -> Mention:
        start, end = toks[c.start][1], toks[c.end - 1][2]
        if c.year and end < len(text) and text[end] in ")]":
            end += 1
        return Mention(kind="item" if c.item_id else "attribute", surface=text[start:end], start=start, end=end,
                       item_id=c.item_id, attr=c.attr, score=round(c.score, 3))


def _deletions(word: str) -> set[str]:
    return {word[:k] + word[k + 1:] for k in range(len(word))}


def _select(candidates: list[_Candidate], chosen: list[_Candidate]) -> list[_Candidate]:
    """Longest first, then the better alias kind and score; no two mentions share a token."""
    taken = {t for c in chosen for t in range(c.start, c.end)}
    out = list(chosen)
    for c in sorted(candidates, key=lambda c: (-(c.end - c.start), c.kind, -c.score, c.start)):
        span = set(range(c.start, c.end))
        if not span & taken:
            out.append(c)
            taken |= span
    return out


def _in_a_word(text: str, toks, c: _Candidate) -> bool:
    """'K' in 'K-Pax': a match that starts or ends inside a hyphenated word is not a mention."""
    start, end = toks[c.start][1], toks[c.end - 1][2]
    return (start >= 2 and text[start - 1] in "-–" and text[start - 2].isalnum()) or \
        (end + 1 < len(text) and text[end] in "-–" and text[end + 1].isalnum())


def _evidence(text: str, toks, c: _Candidate) -> bool:
    """Context that makes a short or common-word title a title: a year, quotes, a cue word, capitals."""
    start, end = toks[c.start][1], toks[c.end - 1][2]
    quoted = start > 0 and text[start - 1] in "\"'“‘*" and end < len(text) and text[end] in "\"'”’*"
    span = toks[c.start:c.end - (1 if c.year else 0)]  # the title's words, without the year after it
    content = [t for t in span if t[0] not in STOPWORDS]
    before = [w for w, _s, _e in toks[max(0, c.start - 2): c.start]]
    # a cue in the same sentence, right before the title ("enjoy! Take care" is no cue for "Take")
    cued = bool(before) and (before[-1] in CUES or tuple(before[-2:]) in CUE_PAIRS) \
        and not re.search(r"[.!?;]", text[toks[c.start - 1][2]:start])
    if not content or all(t[0] in FUNCTION_WORDS for t in span):
        # "It", "Yes", "Anything Else": never in lower case, and a capital is not enough (chat runs sentences
        # together: "... Grown Ups It was good"): a year, quotes or a cue before it ("I loved It").
        shouting = text.upper() == text
        return not shouting and all(text[s].isupper() for _w, s, _e in span) and bool(c.year or quoted or cued)
    if c.year or quoted:
        return True
    # "like matrix", "like comedy": a cue alone does not make a title of a bare word or of an attribute's name
    if c.strict:  # a capitalised phrase ("Inside Out"), or a capital and a cue ("I loved Alien")
        if cued and c.known and not c.attribute_word:
            return True
        return _capitalised(text, span, content, anywhere=cued) and (cued or len(span) > 1)
    return (cued and c.kind != 1 and not c.attribute_word) or _capitalised(text, span, content)


def _capitalised(text: str, span, content=None, *, anywhere: bool = False) -> bool:
    """Every (content) word written with a capital, and not merely because a sentence starts there."""
    if text.upper() == text or not span:  # shouting: capitals say nothing
        return False
    upper = [t for t in span if text[t[1]].isupper() or text[t[1]].isdigit()]
    if all(t in upper for t in (content or span)):
        return anywhere or len(upper) > 1 or not _sentence_start(text, span[0][1])
    return False


def _sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip()
    return not before or before[-1] in ".!?\n"


def _follows_list(text: str, toks, c: _Candidate, chosen: list[_Candidate]) -> bool:
    """'I loved The Dark Knight and Heat': a short title right after a linked one and a joiner."""
    ends = {x.end for x in chosen}
    if c.start >= 2 and toks[c.start - 1][0] in LIST_JOINERS and c.start - 1 in ends:
        content = [t for t in toks[c.start:c.end] if t[0] not in STOPWORDS]
        return bool(content) and (not c.strict or all(text[t[1]].isupper() for t in content))
    return False


def _with_sentiment(text: str, mentions: list[Mention]) -> list[Mention]:
    lowered = text.lower()
    protected = lowered.replace("anything but", "anything_but")  # same length: offsets still hold
    bounds = [0, *sorted({m.end() for m in _CLAUSE_END.finditer(protected)}), len(text)]
    out: list[Mention] = []
    for n, m in enumerate(mentions):
        clause_start = max(b for b in bounds if b <= m.start)
        clause_end = min(b for b in bounds if b >= m.end)
        prev_end = max([clause_start] + [x.end for x in mentions[:n] if x.end <= m.start])
        after_end = min([clause_end] + [x.start for x in mentions[n + 1:] if x.start >= m.end])
        before, after = lowered[prev_end:m.start], lowered[m.end:after_end]
        sentiment = sentiment_of(before, after)
        gap = lowered[mentions[n - 1].end:m.start] if n else "."
        if sentiment is None and re.fullmatch(r"[\s,]*(and|or|&|nor)?[\s,]*", gap):
            sentiment = out[-1].sentiment  # "I hated Titanic, Avatar and Alien": the list shares one verb
        sentiment = sentiment or sentiment_of(lowered[clause_start:m.start], "") or "liked"
        out.append(replace(m, sentiment=sentiment))
    return out


# Everyday words that people capitalise in chat and that some actor carries as a surname.
_EVERYDAY = frozenset("good great best nice cool fine love lovely sweet young king queen little".split())


def mask_mentions(text: str, mentions: Sequence[Mention]) -> str:
    """The text with every linked span blanked (same length), so its words are not read again as tags."""
    chars = list(text)
    for m in mentions:
        chars[m.start:m.end] = " " * (m.end - m.start)
    return "".join(chars)
