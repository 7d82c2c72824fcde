"""`concierge bench chat` on the tiny catalog with the scripted model: what it plays, counts and reports."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from agent.llm import ChatReply, LLMTimeout, ScriptedChatModel, Usage
from agent.policy import PolicyConfig
from ui.cli import app as cli
from conversation.service import ConversationService, ServiceConfig
from evals.bench_chat import follow_up, openings, run_chat_bench
from evals.bench_chat_report import verdicts, write_chat_report
from tests.api_support import write_tiny_catalog
from tests.helpers import lead_reply, tiny_movies


def _service(model) -> ConversationService:
    config = ServiceConfig(policy=PolicyConfig(recommend_below=2, max_questions=2))
    return ConversationService(tiny_movies(), model=model, config=config)


def test_openings_cover_attributes_titles_wishes_and_other_languages():
    from evals.bench_chat import OTHER_LANGUAGES, WISHES

    texts = openings(tiny_movies(), 8)
    assert len(texts) == 8 and len(set(texts)) == 8
    catalog = tiny_movies()
    vocabulary = {v.lower() for item in catalog.items.values() for values in item.attributes.values() for v in values}
    names = [item.title.rsplit(" (", 1)[0] for item in catalog.items.values()]
    titles = [t for t in texts if any(name in t for name in names)]  # typed without the year
    assert titles and not any("(19" in t or "(20" in t for t in titles)
    assert any(t in WISHES for t in texts) and any(t in OTHER_LANGUAGES for t in texts)
    plain = [t for t in texts if t not in WISHES and t not in OTHER_LANGUAGES and t not in titles]
    assert plain and all(any(word in t.lower() for word in vocabulary) for t in plain)


def test_run_counts_turns_calls_tokens_and_degraded_turns():
    lead = lead_reply("Good choice.")  # names the asked value on ask turns, as the service requires

    def reply(request):
        return ChatReply(text=lead(request), usage=Usage(prompt_tokens=50, completion_tokens=4))

    replies = [reply] * 6
    model = ScriptedChatModel(["Warm-up lead?", *replies[:3], LLMTimeout("too slow"), *replies[3:]],
                              default=lead_reply("Another lead."))
    result = run_chat_bench(_service(model), conversations=2, turns=4)
    assert result["turns"] == 8 and len(result["samples"]) == 8
    assert len(model.calls) == 1 + 8  # one warm-up call, then one reply call a turn
    assert result["llm_calls_per_turn"] == 1.0 and result["llm_calls_histogram"] == {1: 8}
    assert result["degraded_turns"] == 1 and result["fallbacks"] == {"reply": 1}
    assert all(s["first_chunk_s"] is not None and s["latency_s"] >= s["first_chunk_s"] for s in result["samples"])
    assert result["latency_s"]["p50"] <= result["latency_s"]["p95"] <= result["latency_s"]["max"]
    # every later message answers what the agent did on the turn before
    assert [s["turn"] for s in result["samples"]] == [1, 2, 3, 4, 1, 2, 3, 4]
    assert {s["action"] for s in result["samples"]} <= {"ask", "recommend"}


def test_follow_up_answers_questions_and_reacts_to_items():
    service = _service(ScriptedChatModel(default="Lead."))
    sid = service.start()
    first = service.respond(sid, "something funny")
    expected = "yes please" if first.action.kind == "ask" else "none of those, something else"
    assert follow_up(first, 0) == expected


def test_report_and_verdicts(tmp_path):
    result = run_chat_bench(_service(ScriptedChatModel(default="Lead.")), conversations=2, turns=3)
    assert verdicts(result) == {"p50_at_most_3_s": True, "p95_at_most_6_s": True, "first_turn_at_most_5_s": True,
                                "at_most_2_llm_calls_per_turn": True}
    path = write_chat_report(result, tmp_path / "chat-latency.md", command="concierge bench chat")
    text = path.read_text(encoding="utf-8")
    assert "# Chat turn latency" in text and "| p50 turn latency <= 3 s |" in text and "| first turn after start <= 5 s |" in text and "## Turns" in text
    assert (tmp_path / "chat-latency.png").stat().st_size > 1000


def test_cli_writes_report_and_json(tmp_path, monkeypatch):
    catalog = write_tiny_catalog(tmp_path / "catalog")
    monkeypatch.setenv("CONCIERGE_CATALOG", str(catalog))
    monkeypatch.setenv("CONCIERGE_PHRASE_WITH_LLM", "false")  # no model: template replies, zero LLM calls
    monkeypatch.setenv("CONCIERGE_READ_WITH_LLM", "false")
    monkeypatch.setenv("CONCIERGE_DATA_DIR", str(tmp_path / "data"))
    report = tmp_path / "out" / "chat.md"
    run = CliRunner().invoke(cli, ["bench", "chat", "--conversations", "2", "--turns", "2", "--json",
                                   "--report", str(report)])
    assert run.exit_code == 0, run.output
    data = json.loads(run.stdout.strip().splitlines()[-1])
    assert data["turns"] == 4 and data["llm_calls_per_turn"] == 0.0 and data["report"] == str(report)
    assert report.exists()
