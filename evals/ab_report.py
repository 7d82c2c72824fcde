"""The A/B summary (paired deltas, tests, cost) and its report: reports/ab-<name>.md and .html with plots.

Both documents are rendered from one list of blocks (heading, text, table, image), so they say the same
thing; the HTML embeds the PNG plots, the Markdown links the files written next to it.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.stats import cost_per_success, mcnemar, paired_delta, success_by_turn, wilcoxon

# Per-session metrics compared, in report order; those missing from the records are skipped.
RULE_METRICS = ("success", "turns", "hdcg", "tokens", "latency_s", "llm_calls", "fallbacks", "invalid_shown")
SIM_METRICS = ("success", "turns", "abandoned", "reflections", "reflections_honoured", "agent_tokens",
               "agent_latency_s", "tokens", "agent_fallbacks", "invalid_ids_shown", "leak_count")
# (An LLM-simulator record's `latency_s` is the session's wall time, which a response cache shortens by
# arm, so it is not compared; `agent_latency_s` is the model time recorded with each call, cached or not.)
# What a session costs the agent: the rule records count only the agent; the LLM simulator's records also
# count the simulated user and the judge in `tokens` and `latency_s`, so the agent's share is used.
COST_KEYS = {"rule": ("tokens", "latency_s"), "llm": ("agent_tokens", "agent_latency_s")}
# A reflective instruction is written when the simulated user's satisfaction drops: fewer is better.
LOWER_IS_BETTER = {"turns", "tokens", "latency_s", "llm_calls", "fallbacks", "invalid_shown", "abandoned", "reflections",
                   "agent_tokens", "agent_latency_s", "agent_fallbacks", "invalid_ids_shown", "leak_count"}
# Counts that follow another metric (honoured instructions follow how many were written): no direction.
NO_DIRECTION = {"reflections_honoured"}
ALPHA = 0.05


def flat(row: dict) -> dict[str, float]:
    """A record's numbers (bools as 0/1); one level of nested dicts becomes `outer.inner` (judge ratings)."""
    out: dict[str, float] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": float(v) for k, v in value.items() if _number(v)})
        elif _number(value):
            out[key] = float(value)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (bool, int, float))


def metric_names(rows: Sequence[dict], simulator: str) -> list[str]:
    """The compared metrics found in the records (judge ratings too for the LLM simulator)."""
    found = set().union(*(flat(r) for r in rows)) if rows else set()
    preferred = RULE_METRICS if simulator == "rule" else SIM_METRICS
    extra = sorted(k for k in found if k.startswith("judge.")) if simulator != "rule" else []
    return [m for m in (*preferred, *extra) if m in found]


def compare(a_rows: Sequence[dict], b_rows: Sequence[dict], *, simulator: str, seed: int = 0,
            max_turn: int = 15) -> dict:
    """Paired deltas with bootstrap CIs, McNemar on success, Wilcoxon on turns, cost per success.

    A metric a session lacks (a judge rating the judge failed to give) is compared over the pairs that have it.
    """
    a_flat, b_flat = [flat(r) for r in a_rows], [flat(r) for r in b_rows]

    def cols(name: str) -> tuple[list[float], list[float]]:
        both = [(x[name], y[name]) for x, y in zip(a_flat, b_flat) if name in x and name in y]
        return [p[0] for p in both], [p[1] for p in both]

    names = metric_names([*a_rows, *b_rows], simulator)
    deltas = {m: paired_delta(*cols(m), seed=seed) for m in names}
    deltas = {m: d for m, d in deltas.items() if d["n"]}
    out: dict[str, Any] = {"pairs": len(a_rows), "deltas": deltas}
    if "success" in deltas:
        out["mcnemar_success"] = mcnemar(*cols("success"))
    if "turns" in deltas:
        out["wilcoxon_turns"] = wilcoxon(*cols("turns"))
    tokens, latency = COST_KEYS["rule" if simulator == "rule" else "llm"]
    if {"success", tokens, latency} <= set(deltas):
        out["cost"] = {side: cost_per_success([r.get("success", 0) > 0 for r in rows], [r.get(tokens, 0) for r in rows],
                                              [r.get(latency, 0) for r in rows])
                       for side, rows in (("A", a_flat), ("B", b_flat))}
    if {"success", "turns"} <= set(deltas):
        out["success_by_turn"] = {side: success_by_turn([r.get("success", 0) > 0 for r in rows],
                                                        [r.get("turns", max_turn) for r in rows], max_turn)
                                  for side, rows in (("A", a_flat), ("B", b_flat))}
    return out


def verdict(metric: str, delta: dict, labels: tuple[str, str]) -> str:
    """One line: which variant the 95% interval favours on this metric, or that it cannot tell."""
    low, high = delta["ci95"]
    if metric in NO_DIRECTION:
        return "read with reflections"
    if low is None or low <= 0 <= high:
        return "no clear difference"
    b_higher = low > 0
    better = labels[1] if b_higher != (metric in LOWER_IS_BETTER) else labels[0]
    return f"favours {better}"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        if abs(value) >= 10:
            digits = min(digits, 2)
        if 0 < abs(value) < 0.01:
            return f"{value:.3g}"
        return f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


def plots(summary: dict, labels: tuple[str, str], folder: Path, stem: str) -> list[tuple[str, Path]]:
    """PNG plots (success by turn; paired metric deltas with CIs; tokens per success); returns (title, path)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made: list[tuple[str, Path]] = []
    curves = summary.get("success_by_turn")
    if curves:
        fig, ax = plt.subplots(figsize=(6, 3.4))
        for side, label in zip(("A", "B"), labels):
            ax.step(range(1, len(curves[side]) + 1), curves[side], where="post", label=label)
        ax.set(xlabel="agent turn", ylabel="share succeeded", ylim=(0, 1.02), title="Success by turn")
        ax.legend()
        made.append(("Success by turn", _save(fig, folder / f"{stem}-success.png")))
    deltas = summary["deltas"]
    if deltas:
        names = list(deltas)
        fig, ax = plt.subplots(figsize=(6, 0.45 * len(names) + 1.2))
        for y, name in enumerate(names):
            d = deltas[name]
            scale = max(abs(d["a"]), abs(d["b"]), 1e-9)  # deltas relative to the larger mean, to share one axis
            ax.errorbar([d["delta"] / scale], [y], xerr=[[(d["delta"] - d["ci95"][0]) / scale],
                                                        [(d["ci95"][1] - d["delta"]) / scale]], fmt="o", capsize=3, color="C0")
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set(yticks=range(len(names)), yticklabels=names, xlabel=f"({labels[1]} - {labels[0]}) / larger mean",
               title="Paired deltas with 95% bootstrap CIs")
        ax.invert_yaxis()
        made.append(("Paired deltas", _save(fig, folder / f"{stem}-deltas.png")))
    cost = summary.get("cost")
    if cost and all(cost[s]["tokens_per_success"] is not None for s in ("A", "B")):
        fig, ax = plt.subplots(figsize=(4.5, 3))
        ax.bar(labels, [cost["A"]["tokens_per_success"], cost["B"]["tokens_per_success"]], color=["C0", "C1"])
        ax.set(ylabel="tokens", title="LLM tokens per successful session")
        made.append(("Tokens per successful session", _save(fig, folder / f"{stem}-cost.png")))
    return made


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def blocks(result: dict) -> list[tuple[str, Any]]:
    """The report as blocks: ("h1"|"h2", text), ("p", text), ("table", (header, rows)), ("img", (title, path))."""
    s, (la, lb) = result["summary"], result["labels"]
    va, vb = result["variants"][la], result["variants"][lb]
    out: list[tuple[str, Any]] = [
        ("h1", f"A/B: {result['component']} prompt {va['prompt']} ({la}) vs {vb['prompt']} ({lb})"),
        ("p", f"Run {result['date']} with `{result['command']}` ({result['seconds']:.0f} s). Simulator: "
              f"{result['simulator']}; {result.get('setting', '')}. Model: {result['model']}. Both variants met the "
              f"same {s['pairs']} simulated users with the same seeds (seed {result['seed']}); deltas are "
              f"{lb} minus {la}, with 95% percentile-bootstrap intervals over pairs (2,000 resamples, seeded)."),
        ("table", (["variant", "prompt", "what it does", "sessions", "kept from an earlier run", "results file"],
                   [[label, f"`{v['prompt']}`", v["description"], v["sessions"], v["resumed"], f"`{v['runs_file']}`"]
                    for label, v in ((la, va), (lb, vb))])),
    ]
    out += paired_blocks(s, (la, lb))
    if "cost" in s:
        out += [("h2", "Cost per successful session"),
                ("table", (["variant", "successes", "tokens (all sessions)", "tokens / success", "agent s / success"],
                           [[label, f"{c['successes']} / {c['sessions']}", _fmt(c["tokens"], 6),
                             _fmt(c["tokens_per_success"]), _fmt(c["latency_s_per_success"])]
                            for label, c in ((la, s["cost"]["A"]), (lb, s["cost"]["B"]))]))]
    out += [("h2", "Plots"), *[("img", item) for item in result.get("plots", [])]]
    return out


HEADINGS = ("h1", "h2", "h3", "h4")


def paired_blocks(s: dict, labels: tuple[str, str], *, heading: str = "h2") -> list[tuple[str, Any]]:
    """The paired deltas and tests of a `compare` summary as report blocks (also used to compare two runs)."""
    la, lb = labels
    out: list[tuple[str, Any]] = [
        (heading, "Paired deltas"),
        ("table", (["metric", la, lb, f"Δ ({lb} − {la})", "95% CI", "reading"],
                   [[m, _fmt(d["a"]), _fmt(d["b"]), _fmt(d["delta"]),
                     f"[{_fmt(d['ci95'][0])}, {_fmt(d['ci95'][1])}]", verdict(m, d, (la, lb))]
                    for m, d in s["deltas"].items()])),
        (heading, "Paired tests"),
    ]
    tests: list[tuple[str, str, dict]] = []
    if "mcnemar_success" in s:
        m = s["mcnemar_success"]
        tests.append(("McNemar, success", f"only {la} succeeded: {m['a_only']}; only {lb}: {m['b_only']}", m))
    if "wilcoxon_turns" in s:
        w = s["wilcoxon_turns"]
        tests.append(("Wilcoxon signed-rank, turns",
                      f"{w['n_nonzero']} of {w['n']} pairs differ; median Δ {_fmt(w['median_delta'])}", w))
    out.append(("table", (["test", "pairs", "method", "statistic", "p"],
                          [[name, pairs, t["method"], _fmt(t["statistic"]), _fmt(t["p_value"])]
                           for name, pairs, t in tests])))
    readings = [f"{name}: p = {_fmt(t['p_value'])}, "
                + ("a significant difference" if t["p_value"] < ALPHA else "no significant difference")
                for name, _pairs, t in tests]
    out.append(("p", f"At α = {ALPHA}, " + "; ".join(readings) + "." if readings else "No paired tests apply."))
    return out


def to_markdown(items: list[tuple[str, Any]], folder: Path) -> str:
    lines: list[str] = []
    for kind, body in items:
        if kind in HEADINGS:
            lines += ["#" * int(kind[1]) + " " + body, ""]
        elif kind == "p":
            lines += [body, ""]
        elif kind == "table":
            header, rows = body
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]
        elif kind == "img":
            title, path = body
            lines += [f"![{title}]({Path(path).relative_to(folder)})", ""]
    return "\n".join(lines)


def to_html(items: list[tuple[str, Any]]) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>A/B report</title><style>"
             "body{font-family:sans-serif;max-width:960px;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
             "img{max-width:100%}</style></head><body>"]
    for kind, body in items:
        if kind in HEADINGS:
            parts.append(f"<{kind}>{html.escape(body)}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(body)}</p>")
        elif kind == "table":
            header, rows = body
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows]
            parts.append("</table>")
        elif kind == "img":
            title, path = body
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(title)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_ab_report(result: dict, path: Path) -> tuple[Path, Path]:
    """Write <path>.md and <path>.html (plots as PNGs next to them); returns both paths."""
    path = Path(path).with_suffix(".md")
    folder = path.parent
    names = tuple(f"{label} ({result['variants'][label]['prompt']})" for label in result["labels"])
    result = {**result, "plots": plots(result["summary"], names, folder, path.stem)}
    items = blocks(result)
    path.write_text(to_markdown(items, folder), encoding="utf-8")
    html_path = path.with_suffix(".html")
    html_path.write_text(to_html(items), encoding="utf-8")
    return path, html_path

