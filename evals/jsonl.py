"""Resumable run files: one JSON object a line, appended and fsynced as each session or sample finishes."""

from __future__ import annotations

import json
from pathlib import Path


def read_rows(path: Path | None, *, key: str = "key") -> dict[str, dict]:
    """Rows already in a run file, by `row[key]` as a string (a torn last line from a crash is skipped)."""
    done: dict[str, dict] = {}
    if path is None or not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[str(row[key])] = row
    return done


def open_for_append(path: Path):
    """Append handle on a JSONL file whose torn last line (a crash mid-write) is cut off first."""
    if path.is_file():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with path.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)
    return path.open("a", encoding="utf-8")
