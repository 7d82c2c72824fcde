"""The agent settings a simulated-user run depends on, and how a printed command reproduces them."""

from __future__ import annotations

from typing import Any

# The agent settings a run depends on, in the order the run tag hashes them.
KNOBS = ("max_questions", "list_size", "recommend_below", "rerank_with_llm", "phrase_with_llm")


def knob_env(knobs: dict[str, Any], defaults: dict[str, Any]) -> str:
    """The CONCIERGE_ variables that set a knob away from its default, so a printed command reproduces the run."""
    return "".join(f"CONCIERGE_{k.upper()}={str(v).lower() if isinstance(v, bool) else v} "
                   for k, v in knobs.items() if defaults.get(k, v) != v)
