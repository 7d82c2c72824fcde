"""Title text and catalog statistics the entity linker reads: normalised words and tokens, a title's year
and aliases ("Matrix, The", "Seven (a.k.a. Se7en)"), how current each item is, duplicate entries, and the
ordinary words of the item descriptions."""

from __future__ import annotations

import re
import unicodedata

from retrieval.catalog import Catalog

RICH_TEXT_TOKENS = 15  # descriptions this long on average tell ordinary words from names
COMMON_DF = 3  # a word in at least this many other items' descriptions is an ordinary word
ARTICLES = ("the", "a", "an", "les", "la", "le", "l'", "il", "el", "die", "das", "der", "los", "las", "un", "une")
HALF_LIFE_DAYS = 91
_WORD = re.compile(r"[^\W_]+")
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_TITLE_YEAR = re.compile(r"\s*\((\d{4})(?:\s*[-–]\s*\d{4})?\)\s*$")
_PAREN_TAIL = re.compile(r"\s*\(([^()]*)\)\s*$")
_TRAILING_ARTICLE = re.compile(r",\s*(" + "|".join(re.escape(a) for a in ARTICLES) + r")$", flags=re.I)
_SUBTITLE = re.compile(r"\s*(?::|\s[-–]\s)\s*")


def normalise(text: str) -> str:
    """Lower case, accents folded, apostrophes dropped, '&' as 'and', punctuation as spaces (as `tokens`)."""
    folded = _fold(text).replace("&", " and ").replace("'", "").replace("’", "")
    return " ".join(_WORD.findall(folded))


def tokens(text: str) -> list[tuple[str, int, int]]:
    """Normalised word tokens with their character offsets in `text`."""
    out = []
    for match in _TOKEN.finditer(text.replace("&", "+")):
        word = _fold(match.group()).replace("'", "").replace("’", "")
        out.append((word, match.start(), match.end()))
    for pos in (m.start() for m in re.finditer("&", text)):
        out.append(("and", pos, pos + 1))
    return sorted(out, key=lambda t: t[1])


def _fold(text: str) -> str:
    if text.isascii():
        return text.lower()
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def title_aliases(title: str) -> tuple[int | None, list[tuple[str, int]]]:
    """A catalog title's year and its aliases as (normalised text, kind): 0 full, 1 no article, 2 before subtitle."""
    year_match = _TITLE_YEAR.search(title)
    year = int(year_match.group(1)) if year_match else None
    base = title[: year_match.start()] if year_match else title
    names = []
    while (tail := _PAREN_TAIL.search(base)) and tail.start() > 0:  # "Seven (a.k.a. Se7en)", "(Léon)"
        names.append(re.sub(r"^a\.k\.a\.\s*", "", tail.group(1).strip(), flags=re.I))
        base = base[: tail.start()]
    aliases: list[tuple[str, int]] = []
    for name in [base, *names]:
        as_stored, name = normalise(name), _front_article(name.strip())
        full = normalise(name)
        if not full:
            continue
        aliases.append((full, 0))
        if as_stored != full:  # "Matrix, The" typed as the catalog writes it
            aliases.append((as_stored, 0))
        words = full.split()
        if len(words) > 1 and words[0] in ARTICLES:
            aliases.append((" ".join(words[1:]), 1))
        head = _SUBTITLE.split(name, maxsplit=1)[0]
        if head != name and len(normalise(head).split()) >= 2:
            aliases.append((normalise(head), 2))
    return year, aliases


def _front_article(name: str) -> str:
    """'Matrix, The' -> 'The Matrix'; 'Cité des enfants perdus, La' -> 'La Cité des enfants perdus'."""
    match = _TRAILING_ARTICLE.search(name)
    if match is None:
        return name
    article = match.group(1)
    return f"{article}{'' if article.endswith(chr(39)) else ' '}{name[: match.start()]}"


def recency_weighted(interactions) -> dict[str, float]:
    """Interactions weighted by their age before the newest one (halving every HALF_LIFE_DAYS); {} without times."""
    times = [i.timestamp for i in interactions if i.timestamp is not None]
    if not times:
        return {}
    newest, half_life = max(times), HALF_LIFE_DAYS * 86400.0
    out: dict[str, float] = {}
    for i in interactions:
        if i.timestamp is not None:
            out[i.item] = out.get(i.item, 0.0) + 0.5 ** ((newest - i.timestamp) / half_life)
    return out


def duplicates(catalog: Catalog, titles, years, people, popularity) -> dict[str, str]:
    """Entries that are one film listed twice (same title, same credited people): each -> the entry kept, the
    one written with its year (the newer if both have one)."""
    groups: dict[tuple, list[str]] = {}
    for item_id, aliases in titles.items():
        if aliases and people[item_id]:
            groups.setdefault((aliases[0][0], people[item_id]), []).append(item_id)
    out: dict[str, str] = {}
    for ids in groups.values():
        if len(ids) > 1:
            kept = max(ids, key=lambda i: (years[i] is not None, years[i] or 0, popularity.get(i, 0.0)))
            out.update({i: kept for i in ids if i != kept})
    return out


def ordinary_words(catalog: Catalog) -> frozenset[str] | None:
    """Words of the items' descriptions (without each one's own title and attribute values, so names do not
    count) used by several items, and article + word phrases ("the road"); None if the descriptions are too thin."""
    if not catalog.items or sum(len(i.text) for i in catalog.items.values()) < 5 * RICH_TEXT_TOKENS * len(catalog.items):
        return None  # a quick look first: too little text (in characters) to be worth counting words
    df: dict[str, int] = {}
    total = 0
    for item in catalog.items.values():
        own = set(normalise(item.title).split()) | {w for vs in item.attributes.values() for v in vs
                                                     for w in normalise(v).split()}
        text = normalise(item.text).split()
        words = set(text) - own
        total += len(words)
        words |= {f"{a} {w}" for a, w in zip(text, text[1:]) if a in ARTICLES and w not in own}  # "the road"
        for w in words:
            df[w] = df.get(w, 0) + 1
    if not catalog.items or total / len(catalog.items) < RICH_TEXT_TOKENS:
        return None
    return frozenset(w for w, n in df.items() if n >= COMMON_DF)
