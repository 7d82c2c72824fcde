"""Whether a named movie was liked, disliked or only seen, from the words around it in its clause."""

from __future__ import annotations

import re
from typing import Literal

from conversation.nlu import _NEGATION, _POSTFIX_NEGATION

_DISLIKE = re.compile(r"\b(hated|disliked|didn'?t (like|enjoy|care for)|wasn'?t (a fan|good|great)|not a fan|"
                      r"couldn'?t stand|boring|awful|terrible|overrated)\b")
_LIKE = re.compile(r"\b(love|loved|loves|like|liked|enjoy|enjoyed|favou?rite|great|amazing|awesome|adore|adored)\b")
_SEEN = re.compile(r"\b(seen|watched|saw)\b")
_UNSEEN = re.compile(r"\b(never|not|haven'?t|hasn'?t|didn'?t)\s+(yet\s+)?(seen|watched|saw|see|watch)\b")
Sentiment = Literal["liked", "disliked", "seen"]


def sentiment_of(before: str, after: str) -> Sentiment | None:
    """Disliked over liked over seen; 'never seen X' says nothing about taste."""
    if _UNSEEN.search(before):
        return None
    if _DISLIKE.search(before) or _NEGATION.search(before) or _POSTFIX_NEGATION.search(after) or _DISLIKE.search(after):
        return "disliked"
    if _LIKE.search(before) or _LIKE.search(after):
        return "liked"
    if _SEEN.search(before) or _SEEN.search(after):
        return "seen"
    return None
