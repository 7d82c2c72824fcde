"""`concierge train-ranker`, `eval rule` and `bench retrieval` argument handling through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ui.cli import app

GOOD = Path(__file__).parent / "data" / "good"
runner = CliRunner()


def test_train_ranker_saves_next_to_the_indexes(tmp_path, monkeypatch):
    monkeypatch.setenv("CONCIERGE_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["train-ranker", str(GOOD / "coffee_shop"), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    saved = Path(info["path"])
    assert saved.is_file() and saved.is_relative_to(tmp_path) and info["fingerprint"] in saved.name


def test_train_ranker_without_interactions_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("CONCIERGE_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["train-ranker", str(GOOD / "books.jsonl")])
    assert result.exit_code == 2 and "no usable interactions" in result.output


def test_eval_rule_names_a_missing_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CONCIERGE_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["eval", "rule", "--dataset", "lastfm", "--data-root", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "nowhere" in result.output and "--data-root" in result.output


def test_bench_retrieval_rejects_bad_sizes(tmp_path, monkeypatch):
    monkeypatch.setenv("CONCIERGE_DATA_DIR", str(tmp_path))
    assert runner.invoke(app, ["bench", "retrieval", "--sizes", "ten"]).exit_code == 2
    assert runner.invoke(app, ["bench", "retrieval", "--sizes", "5"]).exit_code == 2
