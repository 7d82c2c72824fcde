"""The one progress helper of the lab: rich bars on stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def bars() -> Progress:
    """A rich Progress on stderr for one or several tasks (add_task / advance / update)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True))


@contextmanager
def progress_bar(total: int | None, label: str, *, show: bool = True) -> Iterator[Callable[[int], None]]:
    """One bar; yields an `advance(n)` callable (a no-op when `show` is False or there is nothing to count)."""
    if not show or (total is not None and total <= 0):
        yield lambda n: None
        return
    with bars() as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
