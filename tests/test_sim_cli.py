import json

import pytest
from typer.testing import CliRunner

from ui.cli import app, build_app
from evals.sim_cases import write_cases
from helpers import tiny_movies
from sim_support import amelie_case, shining_case


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("CONCIERGE_DATA_DIR", str(tmp_path / "data"))
    items = tmp_path / "items.jsonl"
    items.write_text("\n".join(item.model_dump_json(exclude={"keywords"}) for item in tiny_movies().items.values()))
    cases = write_cases([shining_case(), amelie_case(), shining_case("quick", patience=2)], tmp_path / "cases.jsonl")
    return tmp_path, items, cases


def _run(*args, cli=app):
    return CliRunner().invoke(cli, ["eval", "sim", *map(str, args)])


def test_template_run_writes_report_plots_and_json(setup):
    tmp_path, items, cases = setup
    report = tmp_path / "reports" / "sim-tiny.md"
    args = ["--cases", cases, "--sessions", 5, "--concurrency", 2, "--seed", 3, "--backend", "none",
            "--catalog", items, "--report", report, "--json"]
    result = _run(*args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["metrics"]["sessions"] == 5 and out["resumed_sessions"] == 0
    assert out["models"] == {"agent": "none", "simulator": "template", "judge": None}
    assert out["prompts"]["simulator"] == "simulator.v1"
    assert report.is_file() and (tmp_path / "reports" / "sim-tiny-turns.png").is_file()
    assert (tmp_path / "reports" / "sim-tiny-success-by-turn.png").is_file()
    assert "## Summary" in report.read_text() and "success rate" in report.read_text()
    again = json.loads(_run(*args).stdout)  # same command: everything resumed, nothing played twice
    assert again["resumed_sessions"] == 5 and again["metrics"] == out["metrics"]
    lines = open(out["results_file"]).read().splitlines()
    assert len(lines) == 5


def test_malformed_cases_file_names_case_and_field(setup):
    tmp_path, items, _cases = setup
    bad = tmp_path / "bad.jsonl"
    row = shining_case().model_dump(mode="json")
    row["need"]["must_not"] = ["Comedy"]
    bad.write_text(json.dumps(row) + "\n")
    result = _run("--cases", bad, "--backend", "none", "--catalog", items)
    assert result.exit_code == 2
    assert "bad.jsonl:1" in result.output and "'shining'" in result.output and "need.must_not" in result.output


def test_unknown_prompt_lists_known_ones(setup):
    _tmp, items, cases = setup
    result = _run("--cases", cases, "--backend", "none", "--catalog", items, "--simulator-prompt", "simulator.v9")
    assert result.exit_code == 2 and "simulator.v1" in result.output and "judge.v1" in result.output


def test_unknown_backend_is_refused(setup):
    _tmp, items, cases = setup
    result = _run("--cases", cases, "--backend", "none", "--simulator-backend", "gpt5", "--catalog", items)
    assert result.exit_code == 2 and "unknown backend 'gpt5'" in result.output


def _scripted_backends(*, answer: bool):
    """A command line whose every backend spec is a ScriptedChatModel named after it; with answer=False any call
    fails."""
    from agent.llm import ScriptedChatModel

    def reply(request):
        text = request.messages[-1].content
        if "JSON: {\"relevance\"" in text:
            return json.dumps({"relevance": 4, "naturalness": 4, "faithfulness": 5})
        if "Your task now:" in text:
            return "(in my words) " + text.split("Your task now:")[-1].strip().splitlines()[0]
        return "Here is what I found for you."

    def build(settings, probe=True):
        name = f"{settings.llm_backend}:{settings.openai_model}" if settings.llm_backend == "openai" else "local"
        return ScriptedChatModel(name=name, default=reply if answer else None)

    return build_app(model_factory=build)


def test_three_models_then_exact_replay_from_the_cache(setup, monkeypatch):
    tmp_path, items, cases = setup
    args = ["--cases", cases, "--sessions", 4, "--seed", 1, "--backend", "local", "--simulator-backend",
            "openai:sim", "--judge-backend", "openai:judge", "--catalog", items, "--cache", tmp_path / "cache.sqlite3",
            "--report", tmp_path / "r.md", "--json"]
    first = _run(*args, cli=_scripted_backends(answer=True))
    assert first.exit_code == 0, first.output
    first = json.loads(first.stdout)
    assert first["models"] == {"agent": "local", "simulator": "openai:sim", "judge": "openai:judge"}
    assert first["prompts"]["agent"] == ["reply.v3"] and first["prompts"]["judge"] == "judge.v1"
    assert first["metrics"]["judged_sessions"] == 4 and first["cache"]["misses"] > 0
    replay = _run(*args, "--fresh", cli=_scripted_backends(answer=False))  # replay: one uncached call would fail
    assert replay.exit_code == 0, replay.output
    replay = json.loads(replay.stdout)
    assert replay["cache"]["misses"] == 0
    assert replay["cache"]["hits"] == first["cache"]["hits"] + first["cache"]["misses"]
    timing = ("latency_per_session_s", "latency_per_success_s", "latency_by_role_s")
    assert {k: v for k, v in replay["metrics"].items() if k not in timing} == \
           {k: v for k, v in first["metrics"].items() if k not in timing}


def test_compare_to_checks_a_rerun_session_by_session(setup):
    tmp_path, items, cases = setup
    base = ["--cases", cases, "--sessions", 4, "--seed", 3, "--backend", "none", "--catalog", items, "--json"]
    first = json.loads(_run(*base, "--report", tmp_path / "a.md").stdout)
    again = _run(*base, "--name", "again", "--report", tmp_path / "b.md", "--compare-to", first["results_file"])
    assert again.exit_code == 0, again.output
    check = json.loads(again.stdout)["comparison"]
    assert check["matched_sessions"] == 4 and check["identical_sessions"] == 4 and check["all_metrics_identical"]
    assert "every compared metric is **identical**" in (tmp_path / "b.md").read_text()
    # an earlier run that played differently is reported as different, session by session
    rows = [json.loads(line) for line in open(first["results_file"])]
    rows[0]["outcome"], rows[0]["success"] = "abandoned", not rows[0]["success"]
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(json.dumps(r) + "\n" for r in rows))
    other = json.loads(_run(*base, "--name", "again", "--report", tmp_path / "c.md", "--compare-to", edited).stdout)
    assert other["comparison"]["differing_sessions"] == [f"{rows[0]['case_id']}:{rows[0]['seed']}"]
    assert not other["comparison"]["all_metrics_identical"] and check["paired"] is None
    paired = other["comparison"]["paired"]  # ... and compared as pairs, as an A/B would
    assert paired["pairs"] == 4 and paired["deltas"]["success"]["n"] == 4
    assert abs(paired["deltas"]["success"]["delta"]) == pytest.approx(0.25)
    text = (tmp_path / "c.md").read_text()
    assert "## Comparison with an earlier run" in text and "McNemar, success" in text and "#### Paired deltas" in text
    missing = _run(*base, "--name", "again", "--compare-to", tmp_path / "nothing.jsonl")
    assert missing.exit_code == 2 and "nothing.jsonl" in missing.output


def test_a_knob_set_away_from_its_default_is_part_of_the_command(setup, monkeypatch):
    tmp_path, items, cases = setup
    base = ["--cases", cases, "--sessions", 2, "--seed", 3, "--backend", "none", "--catalog", items, "--json"]
    plain = json.loads(_run(*base, "--report", tmp_path / "a.md").stdout)
    assert plain["command"].startswith("concierge eval sim ")
    monkeypatch.setenv("CONCIERGE_MAX_QUESTIONS", "2")
    knob = json.loads(_run(*base, "--report", tmp_path / "b.md").stdout)
    assert knob["command"].startswith("CONCIERGE_MAX_QUESTIONS=2 concierge eval sim ")
    assert knob["agent_settings"]["max_questions"] == 2 and knob["results_file"] != plain["results_file"]
    assert "Agent settings: max_questions 2" in (tmp_path / "b.md").read_text()


def test_the_ab_command_names_the_knobs_it_ran_with():
    from evals.cli.ab import _knob_prefix
    from conversation.settings import Settings

    default = Settings.model_construct()
    assert _knob_prefix(default) == ""
    moved = default.model_copy(update={"max_questions": default.max_questions + 2, "rerank_with_llm": True})
    assert _knob_prefix(moved) == f"CONCIERGE_MAX_QUESTIONS={default.max_questions + 2} CONCIERGE_RERANK_WITH_LLM=true "
