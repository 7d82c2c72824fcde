"""The message reader of the product turn: lexicon matcher, translation of other languages, LLM extraction.

English: the matcher, then the LLM extractor for messages it read nothing in (`nlu_llm.read_message`).
Another language: the matcher reads the original with the multilingual words of `lexicon.yaml` (accents
folded, elisions split, the language's negation and "but" words mapped to the English ones the matcher
scopes). If that found nothing (or `translate_all`), the LLM translates the message and the English reading
runs on the translation; the two readings are merged, the translation's polarity winning where they
disagree. Translating only what the words missed: the embedded model's translations lose meaning often
("Dokus mag ich total" -> "I can't watch it.") and cost seconds, while the words read most requests.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Container
from dataclasses import dataclass, field

from agent.llm import ChatModel
from agent.prompts import PromptTemplate
from conversation.nlu import Lexicon, Understanding, understand
from conversation.nlu_llm import AttributeShortlist, needs_llm, read_message
from agent.state import ConvState, LLMCallTrace
from conversation.translate import Translator, is_english

# French/Italian elided articles and prepositions: "d'horreur", "dell'orrore", "l'azione".
_ELISION = re.compile(r"\b([dljmnst]|qu|dell|dall|nell|sull|all|un|quell)['’](?=\w)", re.IGNORECASE)
# Negations of de, fr, es, it, pt, nl, pl, sv, da/no, ru (Turkish negates after the noun), rewritten to the English "not" whose scope the matcher knows.
_NEGATION = re.compile(
    r"\b(kein|keine|keinen|keiner|keinem|keins|nicht|ohne|nix|nie|niemals|hasse|pas|sans|aucun|aucune|jamais|"
    r"rien|déteste|deteste|sin|nada|ningún|ninguna|ningun|nunca|odio|detesto|niente|senza|nessun|nessuno|nessuna|"
    r"mai|non|sem|não|nao|nenhum|nenhuma|geen|niet|zonder|nooit|haat|bez|żadnych|żadnego|żadnej|nienawidzę|"
    r"inga|ingen|inte|utan|aldrig|hatar|ikke|uden|uten|не|без|нет|никаких)\b",
    re.IGNORECASE,
)
# "but" of those languages (clause boundaries for the negation's scope). Portuguese "mas"; not Spanish "más".
_BUT = re.compile(r"\b(aber|sondern|mais|pero|sino|ma|però|mas|maar|ale|lecz|men|но)\b", re.IGNORECASE)


def fold(text: str) -> str:
    """Lower case without accents ("comédie" -> "comedie"): people type both."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def prepare_foreign(text: str, phrases: Container[str] | None = None) -> str:
    """A non-English message as the matcher can read it: elisions split, negation and "but" in English,
    and (given the lexicon's `phrases`) unknown words reduced to known ones by `resolve_word`."""
    text = _ELISION.sub(r"\1 ", text)
    text = _NEGATION.sub(" not ", text)
    text = fold(_BUT.sub(" but ", text))
    if phrases is None:
        return text
    return _TOKEN.sub(lambda m: resolve_word(m.group(), phrases), text)


_TOKEN = re.compile(r"[^\W\d_][\w-]*")
# A compound on "film" (de, nl, sv, da, pl, pt): "Zombiefilme", "vampyrfilmer", "Kriegsfilmen".
_FILM = re.compile(r"^(\w{3,}?)s?(film|filme|filmen|films|filmer|filmy|filmes)$")
_ENDINGS = ("ern", "en", "er", "es", "e", "n", "s")  # inflection endings, longest first


def resolve_word(word: str, phrases: Container[str]) -> str:
    """A word the lexicon lacks as words it has: the parts of a hyphenated word ("Sci-Fi-Film"), the part of
    a compound before "film", or the word without an inflection ending ("Actionfilmen"); else as it is."""
    if word in phrases or len(word) < 5:
        return word
    if "-" in word:
        return " ".join(resolve_word(part, phrases) for part in word.split("-") if part)
    compound = _FILM.match(word)
    if compound:
        return resolve_word(compound.group(1), phrases)
    for ending in _ENDINGS:
        if word.endswith(ending) and word[: -len(ending)] in phrases and len(word) - len(ending) >= 4:
            return word[: -len(ending)]
    return word


# English attribute words that are everyday words of the other languages: German "war" (was), "wär" (would
# be), "Art" (kind), "bad" (bath), "hell" (bright), "Gift" (poison), "Kind" (child); Dutch "war" (muddle).
_FALSE_FRIENDS = frozenset({"war", "art", "bad", "hell", "gift", "kind", "rat", "mist", "fast", "see", "die"})


def folded_lexicon(lexicon: Lexicon) -> Lexicon:
    """The same phrases with accents folded, to match `prepare_foreign` text, without false friends."""
    stop = frozenset(fold(str(s)) for s in lexicon.stopwords) | _FALSE_FRIENDS  # str: YAML reads "no" as False
    return Lexicon(phrases={fold(k): v for k, v in lexicon.phrases.items()}, stopwords=stop)


def merge(native: Understanding, english: Understanding) -> Understanding:
    """Both readings of one message; where they disagree on polarity the English one wins."""
    out = english.model_copy(deep=True)
    for attr in native.accepted:
        if attr not in out.accepted and attr not in out.rejected:
            out.accepted.append(attr)
    for attr in native.rejected:
        if attr not in out.accepted and attr not in out.rejected:
            out.rejected.append(attr)
    out.skip_asked = out.skip_asked or native.skip_asked
    out.reject_shown = out.reject_shown or native.reject_shown
    if out.accepted or out.rejected:
        out.wishes = []
    return out


@dataclass
class Reading:
    """What one message said, the English text that was read, and the LLM calls and fallbacks it took."""

    understanding: Understanding
    text_en: str
    llm_calls: list[LLMCallTrace] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    english: bool = True


class MessageReader:
    """Matcher -> (not English: translate, read the translation) -> LLM extractor for what the matcher misses."""

    def __init__(self, lexicon: Lexicon, *, model: ChatModel | None = None, shortlist: AttributeShortlist | None = None,
                 extract_prompt: PromptTemplate | None = None, translate_prompt: PromptTemplate | None = None,
                 extract_timeout_s: float = 20.0, translate_timeout_s: float = 15.0, translate: bool = True,
                 llm_extract: bool = True, translate_all: bool = False,
                 detect_english: Callable[[str], bool] = is_english) -> None:
        self.lexicon, self.native_lexicon = lexicon, folded_lexicon(lexicon)
        self.model, self.shortlist, self.extract_prompt = model, shortlist, extract_prompt
        self.extract_timeout_s, self.llm_extract, self.detect_english = extract_timeout_s, llm_extract, detect_english
        self.translate_all = translate_all
        self.translator = (Translator(model, translate_prompt, timeout_s=translate_timeout_s)
                           if translate and model is not None and translate_prompt is not None else None)

    def read(self, text: str, state: ConvState) -> Reading:
        """Read one (title-masked) message against the conversation state."""
        if self.detect_english(text):
            return self._read_english(text, state, allow_llm=True)
        native = understand(prepare_foreign(text, self.native_lexicon.phrases), state, self.native_lexicon)
        if native.wishes:
            native.wishes = [text.strip()[:300]]
        if self.translator is None or not (self.translate_all or needs_llm(native, text)):
            return Reading(native, text, english=False)
        translation = self.translator.translate(text)
        calls = [translation.trace] if translation.trace is not None else []
        if translation.fallback is not None:
            return Reading(native, text, calls, [translation.fallback], english=False)
        found = bool(native.accepted or native.rejected)
        reading = self._read_english(translation.text, state, allow_llm=not found)
        return Reading(merge(native, reading.understanding), translation.text, calls + reading.llm_calls,
                       reading.fallbacks, english=False)

    def _read_english(self, text: str, state: ConvState, *, allow_llm: bool) -> Reading:
        use_llm = allow_llm and self.llm_extract
        extraction = read_message(text, state, self.lexicon, shortlist=self.shortlist if use_llm else None,
                                  model=self.model if use_llm else None, prompt=self.extract_prompt,
                                  timeout_s=self.extract_timeout_s)
        calls = [extraction.trace] if extraction.trace is not None else []
        fallbacks = [extraction.fallback] if extraction.fallback is not None else []
        return Reading(extraction.understanding, text, calls, fallbacks)
