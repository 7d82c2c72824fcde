"""LLM extraction is confined to a shortlist of real values; the combined reader keeps the matcher's reading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent.llm import LLMTimeout, ScriptedChatModel
from agent.prompts import load_prompt
from conversation.nlu import Lexicon, Understanding
from conversation.nlu_llm import MIN_SIMILARITY, AttributeShortlist, combine, llm_extract, read_message, verified
from agent.state import Attr, ConvState
from evals.nlu_eval import Example, load_examples, score
from retrieval.embeddings import HashingEmbedder
from tests.helpers import tiny_movies

CAT = tiny_movies()
LEX = Lexicon.from_catalog(CAT, min_tag_items=1)
PROMPT = load_prompt("extract.v1")


class FixedEmbedder:
    """Unit vectors given per text, so a test sets the cosine between a message and a value."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def embed(self, texts, *, batch_size: int = 64) -> np.ndarray:
        return np.asarray([self.vectors[t] for t in texts], dtype=np.float32)


COMEDY, HORROR, PARIS = Attr(type="genre", value="Comedy"), Attr(type="genre", value="Horror"), Attr(type="tag", value="paris")


def test_values_outside_the_options_are_dropped_and_schema_lists_them():
    model = ScriptedChatModel([json.dumps({"liked": ["Comedy", "Zombies"], "disliked": ["Horror", "Comedy"]})])
    out = llm_extract("a comedy, no horror", [COMEDY, HORROR], model=model, prompt=PROMPT)
    assert out.understanding.accepted == [COMEDY] and out.understanding.rejected == [HORROR]
    enum = model.calls[0].json_schema["properties"]["liked"]["items"]["enum"]
    assert enum == ["Comedy", "Horror"] and model.calls[0].json_schema["properties"]["liked"]["maxItems"] == 5
    assert "<data>a comedy, no horror</data>" in model.calls[0].messages[1].content


def test_failures_give_an_empty_reading_with_a_reason():
    for step in (LLMTimeout("slow"), "no json"):
        out = llm_extract("x", [COMEDY], model=ScriptedChatModel([step]), prompt=PROMPT)
        assert out.understanding.accepted == [] and out.fallback.startswith("extract:")


def test_combined_keeps_a_matcher_reading_as_it_is():
    matched = Understanding(accepted=[COMEDY])
    extracted = Understanding(accepted=[PARIS], rejected=[COMEDY])
    assert combine(matched, extracted, "a comedy set in paris") == matched


def test_combined_takes_the_llm_reading_only_when_the_matcher_read_nothing():
    extracted = Understanding(accepted=[PARIS], rejected=[COMEDY])
    plain = combine(Understanding(), extracted, "somewhere in france")
    assert plain.accepted == [PARIS] and plain.rejected == []  # no negation in the text: no dislike
    negated = combine(Understanding(), extracted, "france, but nothing that makes me laugh")
    assert negated.accepted == [PARIS] and negated.rejected == [COMEDY]


def test_read_message_asks_the_llm_only_for_what_the_matcher_cannot_read():
    shortlist = AttributeShortlist(sorted(set(LEX.phrases.values()), key=str), HashingEmbedder())
    model = ScriptedChatModel([json.dumps({"liked": ["paris"], "disliked": []})])
    read = read_message("a funny film set in paris", ConvState(session_id="s"), LEX, shortlist=shortlist,
                        model=model, prompt=PROMPT, k=3)
    assert COMEDY in read.understanding.accepted and model.calls == []  # the matcher read it
    near = {"somewhere in france": [1.0, 0.0], "paris": [0.8, 0.6], "Comedy": [0.0, 1.0]}
    small = AttributeShortlist([PARIS, COMEDY], FixedEmbedder(near))  # both within the verified top 3
    out = read_message("somewhere in france", ConvState(session_id="s"), LEX, shortlist=small,
                       model=model, prompt=PROMPT, k=100)
    assert out.understanding.accepted == [PARIS] and len(model.calls) == 1
    assert "paris" in model.calls[0].json_schema["properties"]["liked"]["items"]["enum"]
    assert out.similarity[PARIS] == pytest.approx(0.8) and out.similarity[COMEDY] == pytest.approx(0.0)


def test_llm_picks_far_in_meaning_from_the_message_are_dropped():
    """'music for a rainy sunday' gets 'soundtrack' from the embedded model; its cosine is below the bar."""
    model = ScriptedChatModel([json.dumps({"liked": ["paris", "Comedy"], "disliked": []})] * 2)
    far = {"somewhere in france": [1.0, 0.0], "paris": [0.4, 0.9165], "Comedy": [0.3, 0.954]}
    out = read_message("somewhere in france", ConvState(session_id="s"), LEX,
                       shortlist=AttributeShortlist([PARIS, COMEDY], FixedEmbedder(far)), model=model,
                       prompt=PROMPT, k=100)
    assert out.understanding.accepted == [] and len(model.calls) == 1
    options = [PARIS, COMEDY]
    assert verified([PARIS, COMEDY], options, {PARIS: 0.64, COMEDY: 0.42}) == [PARIS]
    assert verified([PARIS, COMEDY], options, {PARIS: MIN_SIMILARITY}) == [PARIS]  # the bar itself passes


def test_combined_keeps_only_llm_picks_the_shortlist_ranks_near_the_top():
    options = [Attr(type="tag", value=v) for v in ("a", "b", "c", "d", "e")]
    assert verified([options[4], options[0], options[0], options[1], options[2]], options) == options[:2]
    extracted = Understanding(accepted=[options[3], options[1]], rejected=[options[2]])
    out = combine(Understanding(), extracted, "no c, maybe b", options)
    assert out.accepted == [options[1]] and out.rejected == [options[2]]


def test_labelled_set_is_large_enough_and_scored_by_polarity():
    examples = load_examples()
    assert len(examples) >= 100 and {e.dataset for e in examples} == {"movielens", "lastfm"}
    ex = [Example("movielens", "x", {"genre=Comedy"}, {"genre=Horror"})]
    flipped = score(ex, [({"genre=Horror"}, {"genre=Comedy"})])
    assert flipped["all"]["tp"] == 0 and flipped["all"]["fp"] == 2 and flipped["all"]["fn"] == 2
    exact = score(ex, [({"genre=Comedy"}, {"genre=Horror"})])
    assert exact["all"]["f1"] == 1.0


def test_small_talk_is_not_sent_to_the_llm():
    from conversation.nlu_llm import is_small_talk, needs_llm

    for text in ("hi there", "Hello!", "surprise me", "whatever is good", "😂🎬", "ok", "no idea really"):
        assert is_small_talk(text) and not needs_llm(Understanding(), text), text
    for text in ("Je voudrais une comédie", "a tearjerker", "hi, I want a horror film", "こんにちは"):
        assert not is_small_talk(text) and needs_llm(Understanding(), text), text
    shortlist = AttributeShortlist(sorted(set(LEX.phrases.values()), key=str), HashingEmbedder())
    model = ScriptedChatModel([])
    out = read_message("hi there", ConvState(session_id="s"), LEX, shortlist=shortlist, model=model, prompt=PROMPT)
    assert model.calls == [] and out.understanding.accepted == []
