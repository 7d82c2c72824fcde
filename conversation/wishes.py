"""Free-text wishes: what is left of a message once titles and attributes are read, as a search query."""

from __future__ import annotations

import re

from bm25s.stopwords import STOPWORDS_EN

# Words of asking rather than wanting: a wish made only of these says nothing to search for.
_REQUEST_WORDS = frozenset(
    "movie movies film films flick flicks something anything recommend recommendation recommendations suggest "
    "suggestion suggestions show watch watching see looking look want wanna need please thanks thank hi hello "
    "hey tonight today evening night weekend similar like likes liked love loved enjoy enjoyed else good great "
    "nice maybe kind sort type one ones pick picks give tell know think would could also lot really".split()
)
_WORD = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)
MIN_CONTENT_WORDS = 1
MAX_CHARS = 300


def content_words(text: str) -> list[str]:
    """The words of a message that are neither stopwords nor words of asking."""
    words = [w.lower().strip("'-") for w in _WORD.findall(text)]
    return [w for w in words if len(w) > 1 and w not in STOPWORDS_EN and w not in _REQUEST_WORDS]


def wish_query(text: str) -> str | None:
    """The message as a search query if it carries any content word ("a heist with a twist"), else None
    ("something like ___ please" once the title is linked)."""
    if len(content_words(text)) < MIN_CONTENT_WORDS:
        return None
    return " ".join(text.split())[:MAX_CHARS]
