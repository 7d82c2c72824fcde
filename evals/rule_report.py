"""reports/rule-<dataset>-<mode>.md: SR@5/10/15, AT, hDCG with 95% CIs beside UNICORN's published numbers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evals.rule_sim import MAX_TURNS, SessionResult, hdcg
from evals.stats import percentile_interval, resamples

# UNICORN (SIGIR 2021) Table 2 as quoted in DESIGN.md: SR@15, AT, hDCG. Only Yelp*'s UNICORN cell is
# confirmed by the maintainers; the rest are to be re-checked.
ANCHORS = {
    "lastfm": {"EAR": (0.429, 12.88, 0.136), "SCPR": (0.465, 12.86, 0.139), "UNICORN": (0.535, 11.82, 0.175)},
    "lastfm_star": {"EAR": (0.595, 10.51, 0.230), "SCPR": (0.709, 8.43, 0.317), "UNICORN": (0.788, 7.58, 0.349)},
}


def per_session(results: Sequence[SessionResult]) -> dict[str, np.ndarray]:
    return {
        "sr5": np.asarray([r.success and r.turn <= 5 for r in results], dtype=float),
        "sr10": np.asarray([r.success and r.turn <= 10 for r in results], dtype=float),
        "sr15": np.asarray([r.success for r in results], dtype=float),
        "at": np.asarray([r.turn if r.success else MAX_TURNS + 1 for r in results], dtype=float),
        "hdcg": np.asarray([hdcg(r.turn, r.rank) if r.success else 0.0 for r in results], dtype=float),
    }


def confidence_intervals(results: Sequence[SessionResult], *, seed: int = 0, rounds: int = 1000) -> dict[str, list[float]]:
    """95% percentile-bootstrap intervals of each metric's mean over sessions."""
    rng = np.random.default_rng(seed)
    values = per_session(results)
    n = len(results)
    out = {}
    for name, data in values.items():
        # one resample at a time, each mean taken on its own: the float sums of the published intervals
        means = np.asarray([data[draw].mean() for draw in resamples(n, rng, rounds)])
        out[name] = list(percentile_interval(means))
    return out


def paired_deltas(results: Sequence[SessionResult], other: Sequence[SessionResult], *, seed: int = 0,
                  rounds: int = 1000) -> dict[str, dict[str, float | list[float]]]:
    """Per metric: mean of `results` minus mean of `other` over the same sessions, with a paired 95%
    percentile-bootstrap interval (sessions resampled together)."""
    if len(results) != len(other):
        raise ValueError("paired results need the same sessions")
    rng = np.random.default_rng(seed)
    mine, theirs = per_session(results), per_session(other)
    n = len(results)
    draws = resamples(n, rng, rounds)
    out = {}
    for name in mine:
        diff = mine[name] - theirs[name]
        means = np.asarray([diff[draw].mean() for draw in draws])  # per resample, as the intervals were published
        out[name] = {"delta": float(diff.mean()), "ci95": list(percentile_interval(means))}
    return out


def write_rule_report(result: dict[str, Any], path: Path) -> Path:
    soft = result["setup"].get("negative_answers") == "soft"
    lines = [*_summary(result, soft), *_anchors(result, soft), *_beside(result), *_extras(result),
             *_policy(result, soft)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


METRICS = (("sr5", "SR@5"), ("sr10", "SR@10"), ("sr15", "SR@15"), ("at", "AT"), ("hdcg", "hDCG"))


def _summary(result: dict[str, Any], soft: bool) -> list[str]:
    """Title, what was run, the metrics with their CIs and the off-path counts."""
    dataset, mode, ci = result["dataset"], result["mode"], result["ci95"]
    lines = [
        f"# Rule-simulator benchmark: {dataset}, `{mode}` mode" + (", soft negative answers" if soft else "")
        + (", popularity ranker (ablation)" if result.get("ranker") == "popularity" else ""),
        "",
        f"Run {result['date']} with `{result['command']}` ({result['seconds']:.0f} s, {result['workers']} worker "
        f"processes"
        + (f"; this run added {result['sessions'] - result['resumed_sessions']:,} sessions to "
           f"{result['resumed_sessions']:,} kept from an earlier, interrupted run of the same command"
           if result.get("resumed_sessions") else "")
        + f"). {result['sessions']:,} sessions of the `{result['split']}` split"
        + (f" (a seeded sample, seed {result['seed']})" if result.get("limit") else " (every pair)")
        + ". Protocol as in EAR/SCPR/UNICORN: the simulated user opens with one random attribute of the "
        f"target (seed {result['seed']}); the agent then has at most {MAX_TURNS} actions, each a question about "
        "one attribute (answered yes iff the target has it) or a list of at most 10 items (success iff the "
        "target is in it, otherwise all are rejected). AT counts a failure as 15.",
        "",
        "| metric | Concierge | 95% CI |",
        "|---|---|---|",
    ]
    lines += [f"| {label} | {result[key]:.4f} | [{ci[key][0]:.4f}, {ci[key][1]:.4f}] |" for key, label in METRICS]
    return lines + [
        "",
        f"Ids shown that were off the path (not in the catalog, missing an accepted attribute, "
        f"{'' if soft else 'carrying a rejected one, '}or shown before): **{result['invalid_ids_shown']}**. "
        f"Ids an LLM proposed that the gate removed: {result['invalid_ids_proposed']}. Fallback rate (turns "
        f"where an LLM step fell back): {result['fallback_rate']:.4f}. Mean agent time per turn: "
        f"{result['mean_turn_latency_s'] * 1000:.1f} ms.",
    ]


def _anchors(result: dict[str, Any], soft: bool) -> list[str]:
    lines = ["", "## Published anchors (UNICORN, SIGIR 2021, Table 2; to be re-checked except where DESIGN.md says)",
             "", "| method | SR@15 | AT | hDCG |", "|---|---|---|---|"]
    for method, (sr, at, h) in ANCHORS.get(result["dataset"], {}).items():
        lines.append(f"| {method} | {sr:.3f} | {at:.2f} | {h:.3f} |")
    variant = (", soft negative answers" if soft else "") + (
        ", popularity instead of EASE" if result.get("ranker") == "popularity" else "")
    lines.append(f"| Concierge `{result['mode']}`{variant} | {result['sr15']:.3f} | {result['at']:.2f} | "
                 f"{result['hdcg']:.3f} |")
    return lines


def _beside(result: dict[str, Any]) -> list[str]:
    """The paired comparison with `graph` mode on the same sample (llm mode only)."""
    beside, mode = result.get("graph_same_sample"), result["mode"]
    if not beside:
        return []
    lines = [
        "",
        "## Beside `graph` mode on the same sample",
        "",
        (f"Planner prompt `{result['planner_prompt']}`. " if result.get("planner_prompt") else "")
        + f"The same {result['sessions']:,} pairs with the same openings, played by the CPR policy alone (no LLM). "
        f"Difference = `{mode}` − `graph`, with a paired bootstrap 95% CI.",
        "",
        f"| metric | `{mode}` | `graph` | difference | 95% CI |",
        "|---|---|---|---|---|",
    ]
    for key, label in METRICS:
        d = beside["paired_delta"][key]
        lines.append(f"| {label} | {result[key]:.4f} | {beside[key]:.4f} | {d['delta']:+.4f} | "
                     f"[{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}] |")
    return lines + [
        f"| fallback rate | {result['fallback_rate']:.4f} | {beside['fallback_rate']:.4f} | | |",
        f"| ids shown off the path | {result['invalid_ids_shown']} | {beside['invalid_ids_shown']} | | |",
        f"| ids proposed, removed by the gate | {result['invalid_ids_proposed']} | {beside['invalid_ids_proposed']} | | |",
        f"| mean agent time per turn (ms) | {result['mean_turn_latency_s'] * 1000:.0f} | "
        f"{beside['mean_turn_latency_s'] * 1000:.1f} | | |",
    ]


def _extras(result: dict[str, Any]) -> list[str]:
    """LLM calls and tokens, the response cache, fallbacks by kind (when there are any)."""
    lines = []
    if result.get("llm_calls_per_turn"):
        lines += ["", f"LLM calls per agent turn: {result['llm_calls_per_turn']:.2f}; tokens per session: "
                      f"{result['tokens_per_session']:.0f}."]
    if result.get("cache"):
        c = result["cache"]
        lines += ["", f"LLM response cache `{c['path']}`: {c['hits']} hits, {c['misses']} misses, {c['stored']} stored."]
    if result.get("fallbacks_by_kind"):
        lines += ["", "Fallbacks by kind: " + ", ".join(f"{k} {v}" for k, v in result["fallbacks_by_kind"].items()) + "."]
    return lines


def _policy(result: dict[str, Any], soft: bool) -> list[str]:
    return [
        "",
        "## Policy",
        "",
        "Candidates follow the path on the item–attribute graph (all accepted attributes, "
        + ("items with a rejected attribute kept but their score lowered by `reject_penalty` per rejected "
           "attribute, as UNICORN's and SCPR's agents do, " if soft else "no rejected ones, ")
        + "nothing shown before, nothing the user has in `train`); item weights are a softmax of the "
        + ("items' popularity in `train` (an ablation of the ranker)" if result.get("ranker") == "popularity" else
           "EASE ranker's personal scores (trained on `review_dict_train` only)")
        + "; the question is the attribute with the highest weighted binary entropy; the agent recommends when "
        "at most 10 candidates remain, when the top 10 hold `recommend_mass` of the weight, or after "
        f"`max_questions` questions. Knobs, chosen on `valid` ({result.get('tuned_from', 'defaults')}): "
        + ", ".join(f"{k} = {v}" for k, v in result["setup"].items()) + ".",
        "",
    ]
