"""Compare a simulated-user run with an earlier one (a replay from the response cache, or a rerun).

Sessions are matched by (case id, seed). A replay is exact when every matched session has the same
transcript and outcome; the headline metrics are then equal too. Timing is reported beside, never
compared: a replay answers from the cache, so its latencies are the cache's, not the model's.

When sessions differ (a rerun with another setting, e.g. `CONCIERGE_MAX_QUESTIONS=1`), the matched
sessions are also compared as pairs, as `concierge ab` does: bootstrap CIs of the deltas, McNemar on
success, Wilcoxon on turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.ab_report import compare, paired_blocks, to_markdown
from evals.sim_metrics import sim_metrics
from evals.sim_runner import read_records

# Metrics that measure time (they differ by design on a replay) and so are shown, not compared.
TIMING = ("latency_by_role_s", "latency_per_session_s", "latency_per_success_s")


def _conversation(record: dict) -> tuple:
    return (record["outcome"], record["turns"],
            tuple((t["role"], str(t["text"])) for t in record["transcript"]),
            tuple(sorted((record.get("judge") or {}).items())))


def compare_runs(records: Sequence[dict], earlier_file: Path, *, max_turn: int = 14) -> dict[str, Any]:
    """Session-by-session and metric-by-metric comparison of `records` with the run in `earlier_file`."""
    earlier = read_records(Path(earlier_file))
    if not earlier:
        raise ValueError(f"{earlier_file}: no finished sessions to compare with")
    mine = {(r["case_id"], int(r["seed"])): r for r in records}
    keys = [k for k in mine if k in earlier]
    differing = [f"{case}:{seed}" for case, seed in keys if _conversation(mine[(case, seed)]) != _conversation(earlier[(case, seed)])]
    now = sim_metrics([mine[k] for k in keys], max_turn=max_turn)
    then = sim_metrics([earlier[k] for k in keys], max_turn=max_turn)
    rows = {name: {"earlier": then[name], "now": now[name], "same": then[name] == now[name]}
            for name in now if name not in TIMING}
    paired = (compare([earlier[k] for k in keys], [mine[k] for k in keys], simulator="llm", max_turn=max_turn)
              if differing else None)
    return {"earlier_file": str(earlier_file), "matched_sessions": len(keys), "only_now": len(mine) - len(keys),
            "paired": paired,
            "identical_sessions": len(keys) - len(differing), "differing_sessions": differing,
            "metrics": rows, "all_metrics_identical": all(r["same"] for r in rows.values()),
            "timing": {name: {"earlier": then[name], "now": now[name]} for name in TIMING}}


def comparison_lines(check: dict[str, Any], *, seconds_now: float, seconds_earlier: float | None) -> list[str]:
    """The report section for a comparison."""
    identical = check["all_metrics_identical"] and not check["differing_sessions"]
    differ = sum(not row["same"] for row in check["metrics"].values())
    lines = [
        "## Replay check" if identical else "## Comparison with an earlier run", "",
        f"Compared with `{check['earlier_file']}`: {check['matched_sessions']} sessions matched by (case, seed), "
        f"{check['identical_sessions']} with the same transcript, outcome and judge ratings; "
        + ("every compared metric is **identical**." if identical
           else f"**{differ} of {len(check['metrics'])}** compared metrics differ."), "",
        "| metric | earlier run | this run | same |", "|---|---|---|---|",
    ]
    for name, row in check["metrics"].items():
        lines.append(f"| {name} | {_short(row['earlier'])} | {_short(row['now'])} | {'yes' if row['same'] else '**no**'} |")
    if check["differing_sessions"]:
        lines += ["", "Sessions that differ: " + ", ".join(check["differing_sessions"][:20]) + "."]
    if check.get("paired"):
        blocks = [("h3", "Paired comparison (this run − earlier run)"),
                  *paired_blocks(check["paired"], ("earlier", "this run"), heading="h4")]
        lines += ["", to_markdown(blocks, Path(".")).rstrip()]
    if seconds_earlier and identical:
        lines += ["", f"Wall time: this run {seconds_now:.1f} s, the earlier run {seconds_earlier:.1f} s "
                      f"({100 * seconds_now / seconds_earlier:.1f}%). Latencies are not compared: a replay's are "
                      "the cache's."]
    return lines + [""]


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return str(value)
