"""Every file in tests/data/malformed/ is refused with a CatalogError naming its file and line."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from retrieval.catalog import CatalogError
from retrieval.catalog_io import MAX_LINE_BYTES, build_interactions
from retrieval.loaders import load_catalog

MALFORMED = Path(__file__).parent / "data" / "malformed"
EXPECTED: dict[str, dict] = json.loads((MALFORMED / "EXPECTED.json").read_text(encoding="utf-8"))
CASES = sorted(p.name for p in MALFORMED.iterdir() if p.name != "EXPECTED.json")


def _snapshot(folder: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_every_corpus_file_has_an_expectation() -> None:
    assert len(CASES) >= 30
    assert sorted(EXPECTED) == CASES


@pytest.mark.parametrize("name", CASES)
def test_malformed_case_is_refused(name: str) -> None:
    case = MALFORMED / name
    expected = EXPECTED[name]
    failing = case / expected["file"] if "file" in expected else case
    before = _snapshot(MALFORMED)

    result = None
    with pytest.raises(CatalogError) as info:
        result = load_catalog(case)

    assert result is None
    assert _snapshot(MALFORMED) == before, "loading must not create or change files"
    error, message = info.value, str(info.value)
    assert Path(error.path) == failing
    assert error.line == expected["line"]
    assert failing.name in message
    if expected["line"] is not None:
        assert f"{failing.name}:{expected['line']}: " in message
    assert expected["contains"] in message


def _item_line(size: int) -> bytes:
    """A valid JSONL item line of exactly `size` bytes, without its newline."""
    head, tail = b'{"id": "big", "title": "Big", "text": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_line_at_the_limit_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "limit.jsonl"
    path.write_bytes(b'{"id": "a", "title": "A"}\n' + _item_line(MAX_LINE_BYTES) + b"\r\n")
    catalog = load_catalog(path)
    assert len(catalog.items["big"].text) > MAX_LINE_BYTES - 100


def test_line_one_byte_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "over.jsonl"
    path.write_bytes(_item_line(MAX_LINE_BYTES + 1) + b"\n")
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert str(info.value) == f"{path}:1: line 1 is longer than {MAX_LINE_BYTES} bytes"


def test_ten_megabyte_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as handle:
        handle.write(b'{"id": "a", "title": "A"}\n')
        handle.write(b'{"id": "b", "title": "' + b"y" * (10 * 1024 * 1024) + b'"}\n')
        handle.write(b'{"id": "c", "title": "C"}\n')
    before = sorted(tmp_path.iterdir())
    tracemalloc.start()
    try:
        with pytest.raises(CatalogError) as info:
            load_catalog(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"huge.jsonl:2: line 2 is longer than {MAX_LINE_BYTES} bytes" in str(info.value)
    # The reader buffers at most about MAX_LINE_BYTES + BLOCK_BYTES, far below the 10 MiB line.
    assert peak < 4 * MAX_LINE_BYTES, f"peak {peak} bytes: the long line was read whole"
    assert sorted(tmp_path.iterdir()) == before


def test_csv_field_over_the_csv_module_limit(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("id,title,text\na1,Dune,short\na2,Emma," + "z" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert "wide.csv:3: a CSV field is longer than 131072 characters" in str(info.value)


def test_interaction_validation_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    rows = [{"user": "u1", "item": "a"}, {"user": "", "item": "b"}]
    with pytest.raises(CatalogError) as info:
        build_interactions(path, rows, [2, 3])
    assert str(info.value).startswith(f"{path}:3: invalid user: ")


def test_unreadable_folder_layout_names_accepted_layouts(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path)
    assert "not a recognised catalog folder" in str(info.value)
    assert "items.jsonl or items.csv" in str(info.value)
