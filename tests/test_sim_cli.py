import json

import pytest
from typer.testing import CliRunner

from conversation.cli import app
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


def _run(*args):
    return CliRunner().invoke(app, ["eval", "sim", *map(str, args)])


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
