"""Messages in other languages: a cheap check whether a message is English (the catalog's language), and an
LLM translation to English with a short versioned prompt, capped output, a deadline and a per-process cache.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass

from agent.llm import ChatModel, LLMError
from agent.prompts import PromptTemplate
from agent.state import LLMCallTrace

# English words that requests are made of and that are not words of the other major European languages
# ("a", "i", "in", "is", "me", "no", "on", "to" and "film" are); they outweigh langid's doubt on short messages.
_ENGLISH = frozenset(
    "the im id ive my we you its are be this that these those some something anything nothing any not dont "
    "without with from about for of at and or but please want would like love hate looking look watch show "
    "give find recommend maybe really very tonight today kids movie movies flick one ones good great".split()
)
# Function words of other languages that are not English words; they outweigh the list above.
_FOREIGN = frozenset(
    "ich du wir ein eine einen einem einer nicht kein keine keinen mit für und oder aber bitte etwas irgendwas ist "
    "sind der das den dem des mag möchte suche gern gerne heute abend auch noch sehr "
    "je tu un une des les le la du pas pour avec sans et ou mais moi ce cette quelque chose jveux veux voudrais "
    "cherche ce soir aime très aussi "
    "yo quiero una unos algo para con sin pero que los las del por favor película peli pelis esta noche gusta "
    "vorrei uno di della delle per niente senza ma qualcosa il gli che non mi piace piacciono stasera molto "
    "quero um uma filme filmes sem mas não algum alguma hoje gosto muito "
    "ik een het geen niet voor zonder maar iets graag zoek hou vanavond wil "
    "chcę jakiś jakiejś nie bez ale dla czy coś szukam lubię dobry jest się na "
    "jag vill en ett och inte utan för något inga ingen ikväll gillar från".split()
) - _ENGLISH
_WORD = re.compile(r"[^\W\d_]+")


def is_english(text: str) -> bool:
    """Whether a message reads as English: another script is not; then function words decide; if they tie,
    plain ASCII words are English and accented ones go to langid (py3langid, its model ships in the wheel).
    Messages without words (emoji, numbers) count as English: nothing to translate."""
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return True
    if any(unicodedata.name(ch, "").split(" ")[0] not in ("LATIN", "") for w in words for ch in w):
        return False  # another script: Cyrillic, Greek, CJK, Arabic...
    folded = [w.replace("’", "'") for w in words]
    english = sum(w in _ENGLISH for w in folded)
    foreign = sum(w in _FOREIGN for w in folded)
    if english != foreign:
        return english > foreign
    if all(ch.isascii() for w in words for ch in w):
        return True  # langid guesses wildly on a few plain words ("dinosaurs!", "indie pop"); the lexicon knows them
    return _langid(text) == "en"


def _langid(text: str) -> str:
    import py3langid  # imported here: it unpickles its model on first use (~0.1 s)

    return py3langid.classify(text)[0]


@dataclass
class Translation:
    """The English text, the trace of the call that made it (None when cached or not asked), and why the
    original was kept if it was."""

    text: str
    trace: LLMCallTrace | None = None
    fallback: str | None = None
    cached: bool = False


class Translator:
    """Translate to English with the LLM; successes are kept in an in-memory LRU cache per process."""

    def __init__(self, model: ChatModel, prompt: PromptTemplate, *, timeout_s: float = 15.0,
                 max_tokens: int = 60, cache_size: int = 512) -> None:
        self.model, self.prompt = model, prompt
        self.timeout_s, self.max_tokens, self.cache_size = timeout_s, max_tokens, cache_size
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()  # one reader serves every session of the process

    def translate(self, text: str) -> Translation:
        """English text; on failure the original text with a counted fallback reason."""
        key = text.strip()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
        if hit is not None:
            return Translation(hit, cached=True)
        messages = self.prompt.render(text=key[:400])
        try:
            reply = self.model.chat(messages, max_tokens=self.max_tokens, timeout_s=self.timeout_s)
        except LLMError as exc:
            trace = LLMCallTrace(purpose="translate", model=self.model.name, prompt_id=self.prompt.id, ok=False,
                                 error=str(exc)[:200])
            return Translation(text, trace, f"translate: {type(exc).__name__}")
        trace = LLMCallTrace(purpose="translate", model=reply.model or self.model.name, prompt_id=self.prompt.id,
                             prompt_tokens=reply.usage.prompt_tokens, completion_tokens=reply.usage.completion_tokens,
                             latency_s=reply.latency_s)
        english = clean_translation(reply.text)
        if not english or len(english) > 4 * len(key) + 40:
            return Translation(text, trace, "translate: empty or runaway output")
        with self._lock:
            self._cache[key] = english
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return Translation(english, trace)


_LABEL = re.compile(r"^\s*(english|translation|english translation)\s*:\s*", re.IGNORECASE)


def clean_translation(raw: str) -> str:
    """The first line of the model's answer, without a "Translation:" label or wrapping quotes."""
    lines = [ln.strip() for ln in raw.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    line = _LABEL.sub("", lines[0]).strip()
    if len(line) >= 2 and line[0] in "\"'“«" and line[-1] in "\"'”»":
        line = line[1:-1].strip()
    return line
