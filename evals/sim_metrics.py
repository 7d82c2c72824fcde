"""Metrics over simulated-user session records: each a small pure function of the records (or one session)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from evals.simulators.judge import DIMENSIONS
from evals.stats import wilson_ci

Record = dict
HONOUR_WINDOW = 2  # agent turns after a reflective instruction in which it must show


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def success_rate(records: Sequence[Record]) -> float:
    return sum(bool(r["success"]) for r in records) / len(records) if records else 0.0


def mean_turns(records: Sequence[Record]) -> float | None:
    """Agent turns per session, whatever the outcome."""
    return _mean([r["turns"] for r in records])


def turns_to_success(records: Sequence[Record]) -> float | None:
    """Agent turns until the user accepted an item, over successful sessions."""
    return _mean([r["turns"] for r in records if r["success"]])


def abandonment_rate(records: Sequence[Record]) -> float:
    return sum(bool(r["abandoned"]) for r in records) / len(records) if records else 0.0


def success_by_turn(records: Sequence[Record], max_turn: int) -> list[float]:
    """Share of sessions that succeeded by agent turn k, for k = 1..max_turn."""
    n = len(records) or 1
    return [sum(bool(r["success"]) and r["turns"] <= k for r in records) / n for k in range(1, max_turn + 1)]


def reflections_per_session(records: Sequence[Record]) -> float:
    return _mean([r["reflections"] for r in records]) or 0.0


def honoured_share(records: Sequence[Record]) -> float | None:
    """Share of checkable reflective instructions the agent's next turns honoured."""
    checked = [d["honoured"] for r in records for d in r.get("reflection_details", []) if d.get("honoured") is not None]
    return _mean([float(h) for h in checked])


def judge_means(records: Sequence[Record]) -> dict[str, float | None]:
    """Mean judge rating per dimension over the sessions the judge rated."""
    rated = [r["judge"] for r in records if r.get("judge")]
    return {d: _mean([j[d] for j in rated]) for d in DIMENSIONS}


def per_session(records: Sequence[Record], key: str) -> float | None:
    return _mean([r[key] for r in records])


def per_success(records: Sequence[Record], key: str) -> float | None:
    """Everything spent (over all sessions) per successful session: the cost of one success."""
    wins = sum(bool(r["success"]) for r in records)
    return sum(r[key] for r in records) / wins if wins else None


def role_means(records: Sequence[Record], key: str) -> dict[str, float | None]:
    """Per-session mean of each role's share (agent, simulator, judge) of tokens or latency."""
    roles = sorted({role for r in records for role in r.get(key, {})})
    return {role: _mean([r[key].get(role, 0) for r in records if key in r]) for role in roles}


def reflection_honoured(reflection: dict, turns: Sequence[dict], attrs_of: Callable[[str], set[str]],
                        *, window: int = HONOUR_WINDOW) -> bool | None:
    """Did the agent's next `window` turns honour a reflective instruction? None if no turn followed.

    avoid X: no question about X and no shown item with X. want X: a question about X or a shown item
    with X. different: no id shown again and no question asked again.
    """
    after = reflection["turn"]
    later = [t for t in turns if after < t["turn"] <= after + window]
    if not later:
        return None
    attr = reflection.get("attribute")
    if reflection["kind"] == "avoid":
        return all(t.get("asked") != attr and not any(attr in attrs_of(i) for i in t["shown"]) for t in later)
    if reflection["kind"] == "want":
        return any(t.get("asked") == attr or any(attr in attrs_of(i) for i in t["shown"]) for t in later)
    before = [t for t in turns if t["turn"] <= after]
    shown = {i for t in before for i in t["shown"]}
    asked = {t.get("asked") for t in before if t.get("asked")}
    return all(not (set(t["shown"]) & shown) and t.get("asked") not in asked for t in later)


def _kinds(records: Sequence[Record]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        for kind, n in (r.get("agent_fallback_kinds") or {}).items():
            out[kind] = out.get(kind, 0) + n
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def sim_metrics(records: Sequence[Record], *, max_turn: int = 14) -> dict:
    """Every headline metric of a simulated-user run."""
    n = len(records)
    wins = sum(bool(r["success"]) for r in records)
    low, high = wilson_ci(wins, n)
    return {
        "sessions": n,
        "success_rate": success_rate(records),
        "success_ci95": [low, high],
        "mean_turns": mean_turns(records),
        "turns_to_success": turns_to_success(records),
        "abandonment_rate": abandonment_rate(records),
        "reflections_per_session": reflections_per_session(records),
        "reflections": sum(r["reflections"] for r in records),
        "reflections_honoured": sum(r["reflections_honoured"] for r in records),
        "honoured_share": honoured_share(records),
        "invalid_ids_shown": sum(r["invalid_ids_shown"] for r in records),
        "leaks": sum(r["leak_count"] for r in records),
        "redactions": sum(r.get("redactions", 0) for r in records),
        "judge": judge_means(records),
        "judged_sessions": sum(1 for r in records if r.get("judge")),
        "judge_failures": sum(1 for r in records if r.get("judge_error") and not r.get("judge")),
        "tokens_by_role": role_means(records, "tokens_by_role"),
        "latency_by_role_s": role_means(records, "latency_by_role"),
        "tokens_per_session": per_session(records, "tokens"),
        "tokens_per_success": per_success(records, "tokens"),
        "latency_per_session_s": per_session(records, "latency_s"),
        "latency_per_success_s": per_success(records, "latency_s"),
        "agent_fallbacks": sum(r.get("agent_fallbacks", 0) for r in records),
        "agent_fallback_kinds": _kinds(records),
        "success_by_turn": success_by_turn(records, max_turn),
    }
