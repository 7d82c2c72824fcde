"""`concierge eval calibrate`: a simulated-user run beside ReDial's human seekers (reports/simulator-calibration.md).

With --json, one object on stdout: command, date, run, redial, models (of the run, if recorded), human and
simulator ({dialogs, seeker_turns, words_per_turn {n, mean, median, p10, p90}, turns_per_dialog {...},
preference_share, reaction_share, both_share, neither_share, turns_after_items_share,
reaction_share_after_items, items_suggested, acceptance_rate, acceptance_rate_unseen, dialogs_accepting_share}),
gaps ([{statistic, key, human, simulator, gap, ratio, note}]), by_persona ({persona: simulator statistics}),
readings (sentences on the gaps past 25%), report.
"""

from __future__ import annotations

import json as jsonlib
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from evals.cli.common import SHARED_DATA, err

REDIAL = SHARED_DATA / "redial" / "valid_data.jsonl"


def eval_calibrate(
    run: Annotated[Path, typer.Option(help="A simulated-user run: the JSONL that `concierge eval sim` or `concierge ab --simulator llm` wrote.")],
    redial: Annotated[Path, typer.Option(help="ReDial dialogs (JSONL, original ReDial schema).")] = REDIAL,
    report: Annotated[Path, typer.Option(help="Where the Markdown report goes.")] = Path("reports/simulator-calibration.md"),
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Utterance length, preference vs reaction turns, acceptance and dialog length: people vs simulator."""
    from evals.calibration import (by_group, gaps, load_redial, load_sim_run, readings, statistics,
                                   write_calibration_report)

    try:
        people = load_redial(redial)
        simulated = load_sim_run(run)
    except (OSError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if not simulated:
        err.print(f"[bold red]error:[/] {run} holds no finished sessions")
        raise typer.Exit(2)
    human, sim = statistics(people), statistics(simulated)
    rows = gaps(human, sim)
    out = {"command": f"concierge eval calibrate --run {run}", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "run": str(run), "redial": os.path.relpath(redial), "models": _models(run), "human": human, "simulator": sim,
           "gaps": rows, "by_persona": by_group(simulated), "readings": readings(rows)}
    path = write_calibration_report(out, report)
    if json:
        print(jsonlib.dumps({**out, "report": str(path)}))
        return
    for row in rows:
        err.print(f"{row['statistic']:>40}: people {row['human']!s:.6}  simulator {row['simulator']!s:.6}")
    err.print(f"report written to {path}")


def _models(run: Path) -> str | None:
    """The agent, simulator and judge models of the run's first record, as one line."""
    with run.open(encoding="utf-8") as handle:
        first = handle.readline()
    try:
        models = jsonlib.loads(first).get("models")
    except jsonlib.JSONDecodeError:
        return None
    if not isinstance(models, dict):
        return None
    return ", ".join(f"{role} {name}" for role, name in models.items() if name)
