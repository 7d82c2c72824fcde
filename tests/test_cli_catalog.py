"""`catalog validate` and `catalog stats` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.shared_data import SHARED_DATA as SHARED
from tests.shared_data import needs_shared_data
from ui.cli_catalog import catalog_app

REPO = Path(__file__).resolve().parents[1]
MOVIELENS = REPO / "data" / "movielens-latest-small"
GOOD = Path(__file__).parent / "data" / "good"
MALFORMED = Path(__file__).parent / "data" / "malformed"

runner = CliRunner()


def _stats_json(path: Path) -> dict:
    result = runner.invoke(catalog_app, ["stats", str(path), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_stats_json_movielens() -> None:
    stats = _stats_json(MOVIELENS)
    assert stats["name"] == "movielens-latest-small"
    assert stats["items"] == 9742
    assert stats["interactions"] == 100836
    assert stats["users"] == 610
    assert stats["attribute_types"]["genre"] == 19
    assert stats["splits"] == {}


@needs_shared_data("lastfm-unicorn", "lastfm")
@needs_shared_data("lastfm-unicorn", "lastfm_star")
@pytest.mark.parametrize(("folder", "attributes"), [("lastfm", 33), ("lastfm_star", 8438)])
def test_stats_json_lastfm(folder: str, attributes: int) -> None:
    stats = _stats_json(SHARED / "lastfm-unicorn" / folder)
    assert stats["name"] == folder
    assert stats["items"] == 7432
    assert stats["attributes"] == attributes
    assert stats["attribute_types"] == {"tag": attributes}
    assert stats["splits"] == {"test": 11892, "train": 52910, "valid": 11891}
    assert stats["users"] == 1801


def test_stats_table() -> None:
    result = runner.invoke(catalog_app, ["stats", str(GOOD / "coffee_shop")])
    assert result.exit_code == 0, result.output
    assert "Catalog coffee" in result.stdout
    assert "attribute type: roast" in result.stdout
    assert "interactions" in result.stdout


def test_validate_good_file() -> None:
    result = runner.invoke(catalog_app, ["validate", str(GOOD / "books.jsonl")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: 3 items, ")
    assert result.stderr == ""


def test_validate_malformed_file_exits_1_with_file_and_line() -> None:
    path = MALFORMED / "duplicate_id.jsonl"
    result = runner.invoke(catalog_app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:4: duplicate id 'a2' (first on line 2)" in result.stderr
    assert result.stdout == ""


def test_stats_malformed_exits_1() -> None:
    result = runner.invoke(catalog_app, ["stats", str(MALFORMED / "wrong_extension.txt"), "--json"])
    assert result.exit_code == 1
    assert "unsupported file extension '.txt'" in result.stderr
