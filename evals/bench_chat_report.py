"""reports/chat-latency.md (and a PNG of the per-turn latencies) from `concierge bench chat`'s JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TARGET_P50_S = 3.0
TARGET_P95_S = 6.0
TARGET_FIRST_TURN_S = 5.0
TARGET_CALLS = 2.0


def verdicts(result: dict[str, Any]) -> dict[str, bool]:
    """The bars: p50 and p95 turn latency, the first turn after start, LLM calls per turn."""
    first = result.get("first_turn_s")
    return {"p50_at_most_3_s": result["latency_s"]["p50"] <= TARGET_P50_S,
            "p95_at_most_6_s": result["latency_s"]["p95"] <= TARGET_P95_S,
            "first_turn_at_most_5_s": first is not None and first <= TARGET_FIRST_TURN_S,
            "at_most_2_llm_calls_per_turn": result["llm_calls_per_turn"] <= TARGET_CALLS}


def _verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def _row(name: str, spread: dict[str, float]) -> str:
    return f"| {name} | {spread['p50']:.2f} s | {spread['p95']:.2f} s | {spread['max']:.2f} s | {spread['mean']:.2f} s |"


def write_plot(result: dict[str, Any], path: Path) -> Path | None:
    """Latency of each turn in order, coloured by action, with the p50 target; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    samples = result["samples"]
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=110)
    for kind, colour in (("ask", "tab:blue"), ("recommend", "tab:orange")):
        xs = [n for n, s in enumerate(samples, 1) if s["action"] == kind]
        ax.bar(xs, [samples[n - 1]["latency_s"] for n in xs], color=colour, label=kind)
    ax.axhline(TARGET_P50_S, color="grey", linestyle="--", linewidth=1, label=f"p50 target {TARGET_P50_S:g} s")
    ax.axhline(result["latency_s"]["p50"], color="black", linewidth=1, label=f"measured p50 {result['latency_s']['p50']:.2f} s")
    ax.set_xlabel("turn (conversations one after another)")
    ax.set_ylabel("seconds to the whole reply")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_chat_report(result: dict[str, Any], path: Path, *, command: str) -> Path:
    """Write the Markdown report (and its plot beside it) and return its path."""
    path = Path(path)
    plot = write_plot(result, path.with_suffix(".png"))
    checks = verdicts(result)
    lat, first = result["latency_s"], result["first_chunk_s"]
    lines = [
        "# Chat turn latency",
        "",
        f"Measured {result['date']} on {result['machine']['cpu']}, {result['machine']['cores']} cores (1-minute load "
        f"average {result['machine']['load_average_1m']:.1f} at the end), model `{result['model']}`, prompts "
        + ", ".join(f"{k} `{v}`" for k, v in result["prompts"].items() if v) + ".",
        "",
        f"Reproduce with: `{command}`.",
        "",
        "| target | measured | result |",
        "|---|---|---|",
        f"| p50 turn latency <= {TARGET_P50_S:g} s | {lat['p50']:.2f} s | {_verdict(checks['p50_at_most_3_s'])} |",
        f"| p95 turn latency <= {TARGET_P95_S:g} s | {lat['p95']:.2f} s | {_verdict(checks['p95_at_most_6_s'])} |",
        f"| first turn after start <= {TARGET_FIRST_TURN_S:g} s | "
        + (f"{result['first_turn_s']:.2f} s" if result.get("first_turn_s") is not None else "-")
        + f" | {_verdict(checks['first_turn_at_most_5_s'])} |",
        f"| LLM calls per turn <= {TARGET_CALLS:g} on average | {result['llm_calls_per_turn']:.2f} | "
        f"{_verdict(checks['at_most_2_llm_calls_per_turn'])} |",
        "",
        f"Start-up (catalog, indexes, linker, model): {result.get('startup_s', 0.0):.1f} s, then `warm_up()` "
        f"{result.get('warm_up_s', 0.0):.1f} s (model weights and the reply prompt's prefix), as `concierge chat` and "
        "`serve` do before taking the first person; the first turn after that is timed separately above.",
        "",
        f"{result['turns']} scripted turns through `ConversationService.respond` (free text, streamed), one after "
        "another in one process. Openings rotate through attributes from the catalog's own vocabulary, titles of "
        "popular items (\"something like X\", \"I loved X and Y\"), a person named in the catalog, free-text wishes "
        "and messages in German, Spanish or French; every later message answers the agent's last move (yes / no / "
        "doesn't matter to a question, \"something else\" to recommendations).",
        "",
        "| | p50 | p95 | max | mean |",
        "|---|---|---|---|---|",
        _row("turn latency (to the whole reply)", lat),
        _row("time to the first streamed chunk", first),
    ]
    lines += [_row(f"turn latency, {kind} turns", spread) for kind, spread in result["latency_by_action_s"].items()]
    hist = ", ".join(f"{n} call{'s' if n != 1 else ''}: {c} turns" for n, c in result["llm_calls_histogram"].items())
    lines += [
        "",
        f"LLM calls per turn: {result['llm_calls_per_turn']:.2f} on average ({hist}); prompt tokens per turn "
        f"{result['prompt_tokens_per_turn']:.0f}, generated tokens per turn {result['completion_tokens_per_turn']:.1f}. "
        f"Degraded turns (an LLM call failed or passed its deadline, the template answered): {result['degraded_turns']}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in result['fallbacks'].items())})" if result["fallbacks"] else "") + ".",
        "",
    ]
    if plot is not None:
        lines += [f"![latency of each turn]({plot.name})", ""]
    lines += [*_turn_table(result["samples"]), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _turn_table(samples: list[dict[str, Any]]) -> list[str]:
    """One row per scripted turn: message, action, the reply's first line, latency, LLM calls, tokens."""
    lines = ["## Turns", "", "| # | message | action | reply (first line) | latency | first chunk | LLM calls | tokens in / out |",
             "|---|---|---|---|---|---|---|---|"]
    for n, s in enumerate(samples, 1):
        first_s = f"{s['first_chunk_s']:.2f} s" if s["first_chunk_s"] is not None else "-"
        reply = s.get("reply", "").replace("|", "/")
        lines.append(f"| {n} | {s['text'][:60]} | {s['action']} | {reply} | {s['latency_s']:.2f} s | {first_s} | {s['llm_calls']} | "
                     f"{s['prompt_tokens']} / {s['completion_tokens']} |")
    return lines
