"""The message reader: English as before, other languages by the multilingual words and the translation."""

from __future__ import annotations

import json

from agent.llm import LLMTimeout, ScriptedChatModel
from agent.prompts import load_prompt
from conversation.nlu import Lexicon
from conversation.nlu import Understanding
from conversation.nlu_llm import AttributeShortlist
from conversation.reader import MessageReader, fold, merge, prepare_foreign
from agent.state import Attr, ConvState
from tests.helpers import tiny_movies

LEX = Lexicon.from_catalog(tiny_movies(), min_tag_items=1)
TRANSLATE, EXTRACT = load_prompt("translate.v1"), load_prompt("extract.v1")
COMEDY, HORROR, ROMANCE = (Attr(type="genre", value=v) for v in ("Comedy", "Horror", "Romance"))


def state() -> ConvState:
    return ConvState(session_id="t")


def reader(model=None, **kw) -> MessageReader:
    return MessageReader(LEX, model=model, translate_prompt=TRANSLATE, extract_prompt=EXTRACT, **kw)


def test_english_is_read_by_the_matcher_without_any_call():
    model = ScriptedChatModel([])  # any call fails the test
    out = reader(model).read("a funny movie, no horror", state())
    assert out.understanding.accepted == [COMEDY] and out.understanding.rejected == [HORROR]
    assert out.text_en == "a funny movie, no horror" and out.llm_calls == [] and out.english


def test_other_languages_without_a_model_use_the_multilingual_words_and_negations():
    out = reader().read("kein Horrorfilm heute, lieber eine Komödie", state())
    assert out.understanding.accepted == [COMEDY] and out.understanding.rejected == [HORROR] and not out.english
    assert reader().read("un film d'horreur, mais pas de comedie", state()).understanding.rejected == [COMEDY]


def test_the_translation_is_read_and_its_polarity_wins():
    model = ScriptedChatModel(["Romance films are not my thing, rather a comedy"])
    out = reader(model, translate_all=True).read("Liebesfilme sind nicht so meins, lieber eine Komödie", state())
    assert out.text_en.startswith("Romance films") and [c.purpose for c in out.llm_calls] == ["translate"]
    assert out.understanding.accepted == [COMEDY] and out.understanding.rejected == [ROMANCE]


def test_a_failed_translation_keeps_the_native_reading_with_a_fallback():
    out = reader(ScriptedChatModel([LLMTimeout("slow")]), translate_all=True).read("eine Komödie bitte", state())
    assert out.understanding.accepted == [COMEDY] and out.fallbacks == ["translate: LLMTimeout"]
    assert out.text_en == "eine Komödie bitte"


def test_the_extractor_is_asked_only_when_neither_reading_found_anything():
    from tests.test_nlu_llm import FixedEmbedder  # unit vectors per text

    vectors = {"Comedy": [1.0, 0.0], "Horror": [0.0, 1.0], "something light for the evening": [1.0, 0.0]}
    shortlist = AttributeShortlist([COMEDY, HORROR], FixedEmbedder(vectors))
    model = ScriptedChatModel(["something light for the evening", json.dumps({"liked": ["Comedy"], "disliked": []})])
    out = MessageReader(LEX, model=model, shortlist=shortlist, translate_prompt=TRANSLATE,
                        extract_prompt=EXTRACT).read("qualcosa per ridere un po'", state())
    assert [c.purpose for c in out.llm_calls] == ["translate", "extract"] and out.understanding.accepted == [COMEDY]


def test_messages_the_words_read_are_not_translated_by_default():
    out = reader(ScriptedChatModel([])).read("eine Komödie bitte, keinen Horror", state())
    assert out.understanding.accepted == [COMEDY] and out.understanding.rejected == [HORROR] and out.llm_calls == []


def test_switches_turn_translation_off():
    out = reader(ScriptedChatModel([]), translate=False).read("une comédie romantique", state())
    assert set(out.understanding.accepted) == {COMEDY, ROMANCE} and out.llm_calls == []


def test_foreign_text_preparation():
    assert prepare_foreign("Pas de comédie, mais un drame") == " not  de comedie,  but  un drame"
    assert prepare_foreign("dell'orrore") == "dell orrore" and fold("Ação") == "acao"


def test_merge_keeps_native_finds_the_translation_missed():
    native = Understanding(accepted=[HORROR, ROMANCE])
    english = Understanding(rejected=[ROMANCE], wishes=["x"])
    out = merge(native, english)
    assert out.accepted == [HORROR] and out.rejected == [ROMANCE] and out.wishes == []


def test_unknown_words_are_reduced_to_known_ones():
    reading = reader().read("ein Sci-Fi-Film oder Zombiefilme, aber keine Actionfilmen", state())
    assert Attr(type="genre", value="Sci-Fi") in reading.understanding.accepted
    assert reading.understanding.rejected == [Attr(type="genre", value="Action")]
