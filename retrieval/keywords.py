"""KALM4Rec stage 1: keywords per item, weighted by how specific they are to it, scored for user keywords.

Items become bags of stemmed keywords (title, text, attribute values, item keywords). Multi-word keywords
that the catalog uses ("dark comedy", "stephen king") are kept as one extra token, so an exact phrase
outranks its loose words. BM25 (the `bm25s` library) does the TF-IUF-style weighting: a keyword carried
by few items weighs more than one carried by thousands. Query keywords are expanded with a synonym list
at a lower weight.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from retrieval.catalog import Catalog, Item
from retrieval.publish import IndexRefused, publish, read_manifest, verified, write_tree

FORMAT_VERSION = 2  # 2: a manifest naming a versioned, checksummed folder of arrays (issue 17)
MANIFEST = "concierge.json"
MAX_PHRASE_WORDS = 4
PHRASE_JOIN = "_"
_WORD = re.compile(r"[0-9a-z]+")
_STOPWORDS = frozenset(STOPWORDS_EN)

# Groups of interchangeable keywords (movies and music). A query keyword pulls in the others of its
# group at `synonym_weight`. Kept short and literal on purpose: a wrong synonym costs precision.
DEFAULT_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("sci-fi", "science fiction", "scifi"),
    ("funny", "comedy", "hilarious", "humor", "humour", "comedic"),
    ("scary", "horror", "frightening", "spooky"),
    ("creepy", "eerie", "unsettling"),
    ("animation", "animated", "cartoon"),
    ("children", "kids", "family", "child"),
    ("romance", "romantic", "love story"),
    ("thriller", "suspense", "suspenseful"),
    ("mystery", "detective", "whodunit"),
    ("film noir", "noir"),
    ("war", "military"),
    ("documentary", "documentaries"),
    ("dark comedy", "black comedy"),
    ("twist ending", "plot twist"),
    ("superhero", "super hero", "superheroes"),
    ("aliens", "extraterrestrial"),
    ("space", "outer space"),
    ("heist", "robbery"),
    ("sad", "tearjerker", "tear jerker"),
    ("atmospheric", "moody"),
    ("thought-provoking", "cerebral", "philosophical"),
    ("1960s", "60s", "sixties"),
    ("1970s", "70s", "seventies"),
    ("1980s", "80s", "eighties"),
    ("1990s", "90s", "nineties"),
    ("hip hop", "hip-hop", "hiphop", "rap"),
    ("rnb", "r&b", "rhythm and blues"),
    ("electronic", "electronica", "edm"),
    ("female vocalists", "female vocalist", "female singer"),
    ("male vocalists", "male vocalist", "male singer"),
    ("indie", "independent"),
    ("rock and roll", "rock n roll", "rock 'n' roll"),
    ("heavy metal", "metal"),
    ("singer-songwriter", "singer songwriter"),
)


class KeywordIndexError(RuntimeError):
    """A keyword index could not be built or loaded; the message says why."""


@dataclass(frozen=True)
class QueryTerm:
    """One scoring token of a query: the stemmed token, the user's own words, and its weight."""

    token: str
    surface: str
    weight: float = 1.0
    via: str | None = None  # the user's keyword this synonym was expanded from


@dataclass(frozen=True)
class KeywordHit:
    """An item found by keywords, its BM25 score and the user keywords it matched."""

    id: str
    score: float
    matched: tuple[str, ...] = field(default_factory=tuple)


class Analyzer:
    """Lowercase, fold accents, split, stem; known multi-word phrases become one extra token."""

    def __init__(self, phrases: Iterable[str] = (), synonyms: Sequence[Sequence[str]] = DEFAULT_SYNONYMS) -> None:
        self._stemmer = Stemmer.Stemmer("english")
        self._cache: dict[str, str] = {}
        self.synonyms = tuple(tuple(group) for group in synonyms)
        self.phrases: set[tuple[str, ...]] = set()
        for text in [*phrases, *(s for group in self.synonyms for s in group)]:
            self.add_phrase(text)
        self._related: dict[str, list[tuple[str, str]]] = {}
        for group in self.synonyms:
            keys = [(self.key(s), s) for s in group]
            for key, _surface in keys:
                self._related.setdefault(key, []).extend((k, s) for k, s in keys if k != key)

    def add_phrase(self, text: str) -> None:
        words = tuple(self.words(text))
        if 2 <= len(words) <= MAX_PHRASE_WORDS:
            self.phrases.add(words)

    def pairs(self, text: str) -> list[tuple[str, str]]:
        """(word, stem) in order; stopwords included (phrases need them)."""
        folded = unicodedata.normalize("NFKD", text.lower().replace("&", " and ").replace("'", ""))
        raw = _WORD.findall("".join(c for c in folded if not unicodedata.combining(c)))
        out = []
        for word in raw:
            stem = self._cache.get(word)
            if stem is None:
                stem = self._cache.setdefault(word, self._stemmer.stemWord(word))
            out.append((word, stem))
        return out

    def words(self, text: str) -> list[str]:
        """Stemmed words in order, stopwords included."""
        return [stem for _word, stem in self.pairs(text)]

    def key(self, text: str) -> str:
        """The single token a keyword maps to: its stem, or its phrase token."""
        return PHRASE_JOIN.join(self.words(text))

    def tokens(self, text: str) -> list[str]:
        """Index tokens of one field: content-word stems plus every known phrase inside it."""
        return [token for token, _surface in self.tokens_with_surface(text)]

    def tokens_with_surface(self, text: str) -> list[tuple[str, str]]:
        """Tokens paired with the words they came from."""
        pairs = self.pairs(text)
        out = [(stem, word) for word, stem in pairs if word not in _STOPWORDS and (len(word) > 1 or word.isdigit())]
        if self.phrases:
            stems = [stem for _word, stem in pairs]
            for start in range(len(stems)):
                for size in range(2, min(MAX_PHRASE_WORDS, len(stems) - start) + 1):
                    if tuple(stems[start : start + size]) in self.phrases:
                        words = " ".join(word for word, _stem in pairs[start : start + size])
                        out.append((PHRASE_JOIN.join(stems[start : start + size]), words))
        return out

    def query_terms(self, keywords: Sequence[str], *, synonym_weight: float) -> list[QueryTerm]:
        """Tokens for user keywords, each tagged with the words it came from, plus weighted synonyms."""
        terms: dict[str, QueryTerm] = {}
        for keyword in keywords:
            tokens = self.tokens_with_surface(keyword)
            whole = self.key(keyword)
            for token, surface in tokens:
                terms.setdefault(token, QueryTerm(token=token, surface=keyword.strip() if token == whole else surface))
            if synonym_weight > 0:
                sources = {whole: keyword.strip(), **{t: s for t, s in tokens if t != whole}}
                for token, source in sources.items():
                    for other, surface in self._related.get(token, []):
                        if other not in terms:
                            terms[other] = QueryTerm(other, surface, synonym_weight, via=source)
        return list(terms.values())


def split_keywords(query: str | Sequence[str]) -> list[str]:
    """A query string split on commas/semicolons/newlines; a list is taken as given."""
    parts = re.split(r"[,;\n]+", query) if isinstance(query, str) else list(query)
    return [p.strip() for p in parts if p and p.strip()]


def item_fields(item: Item) -> list[str]:
    """The texts an item is indexed by: title, description, attribute values, keywords."""
    values = [v for kind, vs in item.attributes.items() if kind != "year" for v in vs]
    return [item.title, item.text, *values, *item.keywords]


def catalog_phrases(catalog: Catalog) -> set[str]:
    """Multi-word attribute values and keywords: the phrases kept whole."""
    found = {v for item in catalog.items.values() for vs in item.attributes.values() for v in vs if " " in v.strip()}
    found |= {k for item in catalog.items.values() for k in item.keywords if " " in k.strip()}
    return found


class KeywordIndex:
    """BM25 over item keywords (bm25s), with stemming, phrases and synonyms; rows follow `ids`."""

    def __init__(self, *, retriever: bm25s.BM25, analyzer: Analyzer, ids: list[str], fingerprint: str,
                 synonym_weight: float = 0.5) -> None:
        self.retriever = retriever
        self.analyzer = analyzer
        self.ids = ids
        self.row_of = {item_id: row for row, item_id in enumerate(ids)}
        self.fingerprint = fingerprint
        self.synonym_weight = synonym_weight

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(
        cls,
        catalog: Catalog,
        *,
        synonyms: Sequence[Sequence[str]] = DEFAULT_SYNONYMS,
        synonym_weight: float = 0.5,
        k1: float = 1.2,
        b: float = 0.75,
        fingerprint: str | None = None,
    ) -> KeywordIndex:
        """Tokenise every item and build the BM25 matrix."""
        if not len(catalog):
            raise KeywordIndexError(f"catalog {catalog.name!r} has no items to index")
        analyzer = Analyzer(catalog_phrases(catalog), synonyms)
        ids = list(catalog.items)
        corpus = [[t for text in item_fields(catalog.items[i]) for t in analyzer.tokens(text)] for i in ids]
        retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        retriever.index(corpus, show_progress=False)
        return cls(retriever=retriever, analyzer=analyzer, ids=ids,
                   fingerprint=fingerprint or catalog.fingerprint(), synonym_weight=synonym_weight)

    def terms(self, query: str | Sequence[str]) -> list[QueryTerm]:
        return self.analyzer.query_terms(split_keywords(query), synonym_weight=self.synonym_weight)

    def score_all(self, query: str | Sequence[str]) -> tuple[np.ndarray, list[QueryTerm]]:
        """BM25 score of every row for the query (synonyms at their lower weight) and the terms used."""
        terms = [t for t in self.terms(query) if t.token in self.retriever.vocab_dict]
        scores = np.zeros(len(self.ids), dtype=np.float32)
        for weight in sorted({t.weight for t in terms}):
            token_ids = [self.retriever.vocab_dict[t.token] for t in terms if t.weight == weight]
            scores += np.float32(weight) * self.retriever.get_scores_from_ids(token_ids)
        return scores, terms

    def search(
        self,
        query: str | Sequence[str],
        *,
        k: int = 20,
        allowed: np.ndarray | None = None,
        exclude_ids: Iterable[str] = (),
    ) -> list[KeywordHit]:
        """Top-k items with a positive score; `allowed` is a boolean mask over rows."""
        scores, terms = self.score_all(query)
        rows = top_rows(scores, k, allowed=allowed, exclude=[self.row_of[i] for i in exclude_ids if i in self.row_of])
        return [KeywordHit(self.ids[r], float(scores[r]), tuple(self.matched(r, terms))) for r in rows]

    def informative(self, text: str, *, max_share: float = 0.05) -> list[str]:
        """The words of `text` that the catalog's documents use, and not too many of them (at most
        `max_share` of the items): chat words and typos ("im", "horroe") say nothing to search for."""
        indptr = self.retriever.scores["indptr"]
        limit = max(1, int(max_share * len(self.ids)))
        out = []
        for token, surface in self.analyzer.tokens_with_surface(text):
            token_id = self.retriever.vocab_dict.get(token)
            if (len(surface) > 2 and token_id is not None and 0 < indptr[token_id + 1] - indptr[token_id] <= limit
                    and surface not in out):
                out.append(surface)
        return out

    def contains(self, row: int, token: str) -> bool:
        """True if the item in `row` carries the token (a binary search in the token's posting list)."""
        token_id = self.retriever.vocab_dict.get(token)
        if token_id is None:
            return False
        indptr, indices = self.retriever.scores["indptr"], self.retriever.scores["indices"]
        postings = indices[indptr[token_id] : indptr[token_id + 1]]
        at = int(np.searchsorted(postings, row))
        return at < len(postings) and int(postings[at]) == row

    def matched(self, row: int, terms: Sequence[QueryTerm]) -> list[str]:
        """The user's keywords an item matched, synonyms shown as 'word ~ keyword'."""
        out: list[str] = []
        for term in terms:
            if self.contains(row, term.token):
                label = term.surface if term.via is None else f"{term.surface} ~ {term.via}"
                if label not in out:
                    out.append(label)
        return out

    def item_keywords(self, item_id: str, catalog: Catalog, *, top: int = 10) -> list[tuple[str, float]]:
        """KALM4Rec's extracted keywords for one item: its tokens by BM25 weight (specific ones first)."""
        row = self.row_of[item_id]
        weights: dict[str, tuple[str, float]] = {}
        for text in item_fields(catalog.items[item_id]):
            for token, surface in self.analyzer.tokens_with_surface(text):
                if token not in weights and token in self.retriever.vocab_dict:
                    score = self.retriever.get_scores_from_ids([self.retriever.vocab_dict[token]])[row]
                    weights[token] = (surface, float(score))
        return sorted(weights.values(), key=lambda pair: -pair[1])[:top]

    def save(self, folder: Path) -> Path:
        """Publish the BM25 arrays (a versioned `bm25-<sha>/` folder) under `concierge.json`, which holds
        what is needed to reopen (ids, phrases, synonyms, fingerprint) and every array file's checksum."""
        folder = Path(folder)
        entry = write_tree(folder, "bm25", lambda tmp: self.retriever.save(str(tmp)))
        meta = {
            "format": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "ids": self.ids,
            "phrases": sorted(" ".join(p) for p in self.analyzer.phrases),
            "synonyms": [list(g) for g in self.analyzer.synonyms],
            "synonym_weight": self.synonym_weight,
            "files": {"bm25": entry},
        }
        publish(folder, MANIFEST, meta)
        return folder

    @classmethod
    def load(cls, folder: Path, *, mmap: bool = False) -> KeywordIndex:
        """Reopen a saved index (no re-tokenising of the catalog); refuses a damaged or older one."""
        folder = Path(folder)
        try:
            meta = read_manifest(folder, MANIFEST)
            if meta is None:
                raise KeywordIndexError(f"{folder} is not a keyword index (no {MANIFEST})")
            if meta.get("format") != FORMAT_VERSION:
                raise KeywordIndexError(f"{folder}: index format {meta.get('format')} != {FORMAT_VERSION}; rebuild it")
            arrays = verified(folder, meta["files"]["bm25"])
        except IndexRefused as exc:
            raise KeywordIndexError(str(exc)) from None
        analyzer = Analyzer((), meta["synonyms"])
        # Saved phrases are already stemmed words: restore them as they are.
        analyzer.phrases |= {tuple(p.split(" ")) for p in meta["phrases"]}
        retriever = bm25s.BM25.load(str(arrays), mmap=mmap)
        return cls(retriever=retriever, analyzer=analyzer, ids=meta["ids"], fingerprint=meta["fingerprint"],
                   synonym_weight=meta["synonym_weight"])


def top_rows(scores: np.ndarray, k: int, *, allowed: np.ndarray | None = None, exclude: Iterable[int] = ()) -> list[int]:
    """Rows of the k highest positive scores, best first, honouring a mask and excluded rows."""
    masked = scores if allowed is None else np.where(allowed, scores, 0.0)
    exclude = list(exclude)
    if exclude:
        masked = masked.copy() if masked is scores else masked
        masked[exclude] = 0.0
    positive = np.flatnonzero(masked > 0)
    if len(positive) > k:
        positive = positive[np.argpartition(-masked[positive], k - 1)[:k]]
    return [int(r) for r in positive[np.lexsort((positive, -masked[positive]))]]
