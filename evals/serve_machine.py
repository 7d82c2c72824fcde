"""What the machine did during `concierge bench serve`: its CPU, how busy all cores were, how late it woke threads.

The benchmark shares a small virtual machine with other jobs; these numbers say how much of a latency is the
machine's rather than the server's.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), "")
    except OSError:
        pass  # not Linux: the CPU model is left blank
    return {"cpu": cpu, "cores": os.cpu_count()}


def cpu_ticks() -> list[int]:
    """The machine-wide `cpu` line of /proc/stat (user nice system idle iowait irq softirq steal ...); [] if absent."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, IndexError, ValueError):
        return []


def busy_share(before: list[int], after: list[int]) -> dict[str, float]:
    """Share of all cores' time between two readings that was busy (not idle or iowait), and stolen by the host."""
    if not before or not after:
        return {}
    delta = [b - a for a, b in zip(before, after)]
    total = sum(delta) or 1
    return {"busy": 1 - (delta[3] + delta[4]) / total, "steal": delta[7] / total}


class SleepProbe:
    """A thread that sleeps `step_s` at a time and records how late it wakes: the machine's share of any wait."""

    def __init__(self, step_s: float = 0.05) -> None:
        self.step_s = step_s
        self.late_s: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sleep-probe", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            time.sleep(self.step_s)
            self.late_s.append(time.perf_counter() - started - self.step_s)

    def take(self) -> list[float]:
        """The lateness recorded so far, and start afresh."""
        taken, self.late_s = self.late_s, []
        return taken

    def __enter__(self) -> SleepProbe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def paused_share(seconds: float = 5.0, *, gap_s: float = 0.02) -> dict[str, float]:
    """Spin for `seconds` and record the gaps in wall time: how much of it this thread did not run at all.

    On an idle machine a spinning thread owns a core, so gaps longer than `gap_s` are time the machine
    (a virtual machine paused by its host, or a throttled one) was not running it.
    """
    gaps: list[float] = []
    end = time.perf_counter() + seconds
    last = time.perf_counter()
    while last < end:
        now = time.perf_counter()
        if now - last > gap_s:
            gaps.append(now - last)
        last = now
    return {"seconds": seconds, "paused_s": sum(gaps), "share": sum(gaps) / seconds, "pauses": len(gaps),
            "longest_s": max(gaps, default=0.0)}
