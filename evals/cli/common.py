"""What the lab's commands share: paths, the error console, the mode and dataset choices."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
LASTFM_ROOT = SHARED_DATA / "lastfm-unicorn"
err = Console(stderr=True)


class Mode(str, Enum):
    graph = "graph"
    llm = "llm"


class Dataset(str, Enum):
    lastfm = "lastfm"
    lastfm_star = "lastfm_star"


def fail(message: str, code: int = 2) -> NoReturn:
    """Print the error on stderr and leave with `code` (2: bad input or configuration)."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)
