"""Language check and LLM translation: English stays untranslated; failures keep the original, counted."""

from __future__ import annotations

from agent.llm import LLMTimeout, ScriptedChatModel
from agent.prompts import load_prompt
from conversation.translate import Translator, clean_translation, is_english

PROMPT = load_prompt("translate.v1")


def test_english_requests_are_english_and_others_are_not():
    for text in ("a scary movie from the 80s please", "something with robots", "I don't want anything animated",
                 "🧟‍♂️🔪", "", "anything but westerns", "dinosaurs!", "gritty neo-noir", "Amélie but sadder"):
        assert is_english(text), text
    for text in ("Je cherche une comédie pour ce soir", "algo de miedo para el finde", "ich hätte gern einen Krimi",
                 "Кино про войну", "恐怖映画が見たい", "vorrei qualcosa di leggero"):
        assert not is_english(text), text


def test_translation_is_cleaned_capped_and_cached():
    model = ScriptedChatModel(['Translation: "I want a funny film"'])
    translator = Translator(model, PROMPT, timeout_s=3.0)
    out = translator.translate("Ich will einen lustigen Film")
    assert out.text == "I want a funny film" and out.fallback is None and out.trace.purpose == "translate"
    assert model.calls[0].max_tokens == 60 and model.calls[0].timeout_s == 3.0
    assert "Ich will einen lustigen Film" in model.calls[0].messages[1].content
    again = translator.translate("Ich will einen lustigen Film")  # a second model call would raise ScriptExhausted
    assert again.text == "I want a funny film" and again.cached and again.trace is None


def test_failures_keep_the_original_text_with_a_fallback():
    for step, reason in ((LLMTimeout("slow"), "translate: LLMTimeout"), ("", "translate: empty or runaway output"),
                         ("x" * 500, "translate: empty or runaway output")):
        out = Translator(ScriptedChatModel([step]), PROMPT).translate("une comédie")
        assert out.text == "une comédie" and out.fallback == reason


def test_the_cache_is_bounded_least_recently_used_first():
    model = ScriptedChatModel(["one", "two", "one again"])
    translator = Translator(model, PROMPT, cache_size=1)
    translator.translate("eins")
    translator.translate("zwei")
    assert translator.translate("eins").text == "one again" and len(model.calls) == 3


def test_clean_translation_takes_the_first_line():
    assert clean_translation("  «a horror film»\nNote: literal") == "a horror film"
    assert clean_translation("English: no war films") == "no war films"
