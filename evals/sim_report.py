"""The Markdown report of a simulated-user run, with PNG plots next to it (success by turn, turns histogram)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from evals.sim_compare import comparison_lines
from evals.sim_metrics import abandonment_rate, mean_turns, sim_metrics, success_rate

MAX_TRANSCRIPT_TURNS = 24


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _roles(values: dict[str, float | None], digits: int) -> str:
    return ", ".join(f"{role} {_fmt(v, digits)}" for role, v in values.items()) or "–"


def plot_success_by_turn(records: Sequence[dict], path: Path, *, max_turn: int) -> Path:
    """Cumulative share of sessions that succeeded by each agent turn, per source and overall."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    turns = list(range(1, max_turn + 1))
    groups = _by(records, "source")
    if len(groups) > 1:
        for name, rows in sorted(groups.items()):
            ax.plot(turns, sim_metrics(rows, max_turn=max_turn)["success_by_turn"], marker=".", label=name)
    ax.plot(turns, sim_metrics(records, max_turn=max_turn)["success_by_turn"], color="black", linewidth=2, label="all")
    ax.set(xlabel="agent turn", ylabel="share of sessions succeeded", ylim=(0, 1), title="Success by turn")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_turns_histogram(records: Sequence[dict], path: Path, *, max_turn: int) -> Path:
    """Session lengths, stacked by outcome (success, abandoned, ran out of turns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    bins = list(range(1, max_turn + 2))
    outcomes = ("success", "abandoned", "max_turns")
    data = [[r["turns"] for r in records if r["outcome"] == o] for o in outcomes]
    ax.hist(data, bins=bins, stacked=True, label=list(outcomes), color=["#4c9f70", "#d1495b", "#8d8d8d"], align="left")
    ax.set(xlabel="agent turns in the session", ylabel="sessions", title="Turns per session")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _by(records: Sequence[dict], key: str) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[str(r[key])].append(r)
    return groups


def _breakdown(records: Sequence[dict], key: str) -> list[str]:
    lines = [f"| {key} | sessions | success | mean turns | abandoned |", "|---|---:|---:|---:|---:|"]
    for name, rows in sorted(_by(records, key).items()):
        lines.append(f"| {name} | {len(rows)} | {success_rate(rows):.3f} | {_fmt(mean_turns(rows), 2)} | "
                     f"{abandonment_rate(rows):.3f} |")
    return lines


def _reflections(records: Sequence[dict]) -> list[str]:
    kinds: dict[str, list[bool | None]] = defaultdict(list)
    for r in records:
        for d in r.get("reflection_details", []):
            kinds[d["kind"]].append(d.get("honoured"))
    if not kinds:
        return ["No reflective instructions were written."]
    lines = ["| kind | written | checkable | honoured |", "|---|---:|---:|---:|"]
    for kind, marks in sorted(kinds.items()):
        checked = [m for m in marks if m is not None]
        lines.append(f"| {kind} | {len(marks)} | {len(checked)} | {sum(checked)} |")
    return lines


def _transcript(record: dict) -> list[str]:
    lines = [f"**{record['case_id']}** (seed {record['seed']}, persona {record['persona']}): {record['outcome']} "
             f"after {record['turns']} turns", ""]
    for turn in record["transcript"][:MAX_TRANSCRIPT_TURNS]:
        text = " / ".join(line.strip() for line in str(turn["text"]).splitlines() if line.strip())
        lines.append(f"> **{turn['role']}:** {text[:300]}  ")
    return lines + [""]


def _examples(records: Sequence[dict]) -> list[str]:
    picks = [next((r for r in records if r["outcome"] == o), None) for o in ("success", "abandoned", "max_turns")]
    out: list[str] = []
    for record in picks:
        if record is not None:
            out += _transcript(record)
    return out


def _summary(run: dict, m: dict) -> list[str]:
    judge = m["judge"]
    low, high = m["success_ci95"]
    return [
        "| metric | value |", "|---|---:|",
        f"| sessions | {m['sessions']} |",
        f"| success rate (95% CI) | {m['success_rate']:.3f} ({low:.3f}–{high:.3f}) |",
        f"| mean turns (all sessions) | {_fmt(m['mean_turns'], 2)} |",
        f"| turns to success | {_fmt(m['turns_to_success'], 2)} |",
        f"| abandonment rate | {m['abandonment_rate']:.3f} |",
        f"| reflective instructions per session | {m['reflections_per_session']:.2f} |",
        f"| ... honoured by the agent's next turns | {_fmt(m['honoured_share'])} |",
        f"| ids shown outside the catalog | {m['invalid_ids_shown']} |",
        f"| title leaks caught (redacted) | {m['leaks']} ({m['redactions']}) |",
        f"| judge relevance / naturalness / faithfulness (1–5) | {_fmt(judge['relevance'], 2)} / "
        f"{_fmt(judge['naturalness'], 2)} / {_fmt(judge['faithfulness'], 2)} ({m['judged_sessions']} rated) |",
        f"| tokens per session / per success | {_fmt(m['tokens_per_session'], 0)} / {_fmt(m['tokens_per_success'], 0)} |",
        f"| tokens per session by role | {_roles(m['tokens_by_role'], 0)} |",
        f"| latency per session by role (s) | {_roles(m['latency_by_role_s'], 2)} |",
        f"| judge failures (no valid ratings) | {m['judge_failures']} |",
        f"| latency per session / per success (s) | {_fmt(m['latency_per_session_s'], 2)} / "
        f"{_fmt(m['latency_per_success_s'], 2)} |",
        f"| agent fallbacks (LLM steps replaced by templates or CPR) | {m['agent_fallbacks']}"
        + (" (" + ", ".join(f"{k}: {v}" for k, v in m["agent_fallback_kinds"].items()) + ")"
           if m.get("agent_fallback_kinds") else "") + " |",
        f"| wall time of this leg (s) | {run['seconds']:.1f} |",
    ]


def write_sim_report(run: dict, records: Sequence[dict], path: Path) -> Path:
    """Write the report and its two plots; returns the report path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    max_turn = run.get("max_turns", 14)
    m = sim_metrics(records, max_turn=max_turn)
    by_turn = plot_success_by_turn(records, path.with_name(f"{path.stem}-success-by-turn.png"), max_turn=max_turn)
    hist = plot_turns_histogram(records, path.with_name(f"{path.stem}-turns.png"), max_turn=max_turn)
    cache = run.get("cache") or {}
    lines = [
        f"# Simulated users: {run['name']}", "",
        f"Command: `{run['command']}`  ", f"Date: {run['date']}  ",
        f"Cases: `{run['cases']}` ({run['cases_count']} cases), {run['sessions']} sessions, seed {run['seed']}, "
        f"concurrency {run['concurrency']}, at most {max_turn} agent turns  ",
        f"Models: agent `{run['models']['agent']}` (mode {run['mode']}), simulator `{run['models']['simulator']}`, "
        f"judge `{run['models']['judge'] or 'none'}`  ",
        f"Prompts: simulator `{run['prompts']['simulator']}`, judge `{run['prompts']['judge'] or 'none'}`, agent "
        f"{', '.join(f'`{p}`' for p in run['prompts']['agent']) or 'none (templates)'}  ",
        *([f"Agent settings: " + ", ".join(f"{k} {v}" for k, v in run["agent_settings"].items()) + "  "]
          if run.get("agent_settings") else []),
        f"Results: `{run['results_file']}` ({run['resumed_sessions']} sessions resumed from an earlier leg)  ",
        *([f"Code: commit `{run['code']}` (a replay from the cache is exact on the same code)  "] if run.get("code") else []),
        f"LLM cache: {cache.get('hits', 0)} hits, {cache.get('misses', 0)} misses (`{cache.get('path', 'off')}`)", "",
        "## Summary", "", *_summary(run, m), "",
        *(comparison_lines(run["comparison"], seconds_now=run["seconds"],
                           seconds_earlier=run["comparison"].get("earlier_seconds")) if run.get("comparison") else []),
        f"![success by turn]({by_turn.name})", "", f"![turns per session]({hist.name})", "",
        "## By source", "", *_breakdown(records, "source"), "",
        "## By persona", "", *_breakdown(records, "persona"), "",
        "## Reflective instructions", "",
        "Checked by code over the agent's next two turns: *avoid X* — no question about X and no item with X; "
        "*want X* — a question about X or an item with X; *different* — nothing shown or asked again.", "",
        *_reflections(records), "",
        "## Example conversations", "", *_examples(records),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
