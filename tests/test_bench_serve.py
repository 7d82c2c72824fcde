"""`concierge bench serve`: the delayed chat model, percentiles, the leak check, the users' messages, and a small
run of the whole benchmark against a really started server (4 sessions x 2 turns, 10 isolation sessions)."""

from __future__ import annotations

import json
import random
import time

import pytest
from typer.testing import CliRunner

from agent.llm import ChatModel, LLMTimeout, Message
from agent.prompts import load_prompt
from ui.cli import app as cli
from evals.bench_serve import find_leaks, follow_up, opening, vocabulary
from evals.stats import percentile
from evals.serve_server import DelayedChatModel
from tests.api_support import write_tiny_catalog
from tests.helpers import tiny_movies


def _reply_messages(user_text: str) -> list[Message]:
    return load_prompt("reply.v1").render(action="ask", attribute="genre = Comedy", value="Comedy", items=[], titles=[], accepted=[],
                                          rejected=[], user_text=user_text)


def test_delayed_model_takes_its_delay_and_quotes_the_user():
    model = DelayedChatModel(delay_s=0.2)
    assert isinstance(model, ChatModel)
    messages = _reply_messages("my code word is cw0123456789abcdef. I like comedies")
    started = time.perf_counter()
    reply = model.chat(messages)
    assert time.perf_counter() - started >= 0.2  # no upper bound: a sleep can overrun by 0.5 s on a busy machine
    assert reply.text == "You said: my code word is cw0123456789abcdef, I like comedies, Here is what I found for you."
    assert reply.usage.completion_tokens > 0 and reply.model == "delayed"
    assert DelayedChatModel(delay_s=0, echo=False).chat(_reply_messages("hi")).text == "Here is what I found for you."


def test_delayed_model_streams_from_half_the_delay_and_honours_the_deadline():
    model, messages = DelayedChatModel(delay_s=0.3), _reply_messages("funny")
    started, arrivals = time.perf_counter(), []
    reply = model.chat(messages, on_token=lambda chunk: arrivals.append((time.perf_counter(), chunk)))
    total = time.perf_counter() - started
    assert "".join(chunk for _, chunk in arrivals) == reply.text
    assert 0.15 <= arrivals[0][0] - started <= arrivals[-1][0] - started <= total and total >= 0.3
    with pytest.raises(LLMTimeout):
        model.chat(messages, timeout_s=0.05)
    with pytest.raises(ValueError):
        DelayedChatModel(delay_s=0.1, first_token_s=0.2)


def test_percentile_is_nearest_rank():
    assert [percentile(list(range(1, 11)), q) for q in (50, 95, 99)] == [5, 10, 10]
    values = list(range(100, 0, -1))  # 1..100, unsorted
    assert [percentile(values, q) for q in (50, 95, 99, 100)] == [50, 95, 99, 100]
    assert percentile([0.2], 99) == 0.2


def test_find_leaks_reports_only_other_sessions_secrets():
    own, other = "cw" + "a" * 16, "cw" + "b" * 16
    texts = {0: f"my code word is {own}", 1: f"you said {own} and {other}", 2: "nothing here"}
    assert find_leaks(texts, {0: own, 1: other, 2: "cw" + "c" * 16}) == [(1, own)]
    assert find_leaks({0: own * 2}, {0: own}) == []


def test_messages_come_from_the_catalog_and_answer_questions():
    vocab = vocabulary(tiny_movies())
    assert set(vocab) == {"genre", "decade", "tag"} and "Comedy" in vocab["genre"]
    first = opening(random.Random(1), vocab)
    assert first == opening(random.Random(1), vocab)  # deterministic for a seed
    words = {v.lower() for values in vocab.values() for v in values}
    assert any(word in first.lower() for word in words)
    rng = random.Random(2)
    assert follow_up(rng, vocab, {"action": {"kind": "ask"}}) in {
        "yes", "no", "doesn't matter", "yes please", "not really", "sure", "no thanks", "skip that one"}
    assert follow_up(rng, vocab, {"action": {"kind": "recommend"}})


def test_a_small_run_against_a_real_server(tmp_path):
    catalog = write_tiny_catalog(tmp_path / "catalog")
    report = tmp_path / "serving-load.md"
    result = CliRunner().invoke(cli, [
        "bench", "serve", "--catalog", str(catalog), "--sessions", "4", "--turns", "2", "--llm-delay", "0.05",
        "--isolation-sessions", "10", "--sse-sessions", "2", "--report", str(report), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    load, sse, iso = out["load"], out["sse"], out["isolation"]
    assert load["errors"] == 0 and load["turns"] == 8 and load["llm_calls_per_turn"] == {"1": 8}
    assert load["latency_s"]["p50"] >= 0.05 and load["create_session_s"]["n"] == 4
    assert sse["errors"] == 0 and sse["turns"] == 4 and sse["ttft_s"]["n"] == 4
    assert sse["ttft_s"]["max"] <= sse["latency_s"]["max"]
    assert iso == {**iso, "sessions": 10, "sessions_read": 10, "errors": 0, "leaks": 0, "own_secret_in_history": 10,
                   "own_secret_in_responses": 10, "history_exactly_as_sent": 10}
    assert iso["turns"] == 25  # 2 or 3 turns each
    assert out["verdicts"]["load_errors"] and out["verdicts"]["isolation"]
    text = report.read_text(encoding="utf-8")
    assert "another session's secret found** | **0**" in text and "concierge bench serve --catalog" in text
    assert "| **overhead** | 8 |" in text
