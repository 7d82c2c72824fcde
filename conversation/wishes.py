"""Free-text wishes: what is left of a message once titles and attributes are read, as a search query."""

from __future__ import annotations

import re

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as STOPWORDS_EN  # 318 words

from conversation.nlu import has_negation

# Words of asking rather than wanting: a wish made only of these says nothing to search for.
_REQUEST_WORDS = frozenset(
    "movie movies film films flick flicks something anything recommend recommendation recommendations suggest "
    "suggestion suggestions show watch watching see looking look want wanna need please thanks thank hi hello "
    "hey tonight today evening night weekend similar like likes liked love loved enjoy enjoyed else good great "
    "nice maybe kind sort type one ones pick picks give tell know think would could also lot really seen watched "
    "different others".split()
)
_WORD = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)
_CLAUSE = re.compile(r"[.;!?,]|\bbut\b|\bhowever\b|\bthough\b", re.IGNORECASE)
MIN_CONTENT_WORDS = 1
MAX_CHARS = 300


def content_words(text: str) -> list[str]:
    """The words of a message that are neither stopwords nor words of asking."""
    words = [w.lower().strip("'-") for w in _WORD.findall(text)]
    return [w for w in words if len(w) > 1 and w not in STOPWORDS_EN and w not in _REQUEST_WORDS]


def wish_query(text: str) -> str | None:
    """The content words of a message's affirmative clauses as a search query ("a heist with a twist"
    -> "heist twist"), or None when none is left ("something like ___ please" once the title is linked;
    "not so gory": a negated wish is not something to search for)."""
    words = [w for clause in _CLAUSE.split(text) if clause.strip() and not has_negation(clause)
             for w in content_words(clause)]
    if len(words) < MIN_CONTENT_WORDS:
        return None
    return " ".join(dict.fromkeys(words))[:MAX_CHARS]
