"""Shared fixtures for the simulated-user tests: tiny catalog cases and a service over it."""

from __future__ import annotations

from conversation.service import ConversationService
from evals.sim_cases import SimCase
from helpers import tiny_movies


def shining_case(case_id: str = "shining", *, patience: int = 6, cooperativeness: str = "cooperative",
                 verbosity: str = "normal") -> SimCase:
    """A horror fan whose target is The Shining (id 7 of tiny_movies) and who wants no comedy."""
    return SimCase.model_validate({
        "id": case_id, "source": "movielens", "catalog": "tests",
        "persona": {"name": "test", "patience": patience, "cooperativeness": cooperativeness, "verbosity": verbosity},
        "need": {"target_ids": ["7"], "target_titles": ["Shining, The (1980)"],
                 "target_attributes": ["genre=Horror", "decade=1980s", "tag=stephen king", "tag=creepy"],
                 "must_have": ["genre=Horror"], "must_not": ["genre=Comedy"], "acceptable_ids": [],
                 "soft": "something creepy"},
    })


def amelie_case(case_id: str = "amelie", **persona) -> SimCase:
    """A romance fan whose target is Amelie (id 8); Shrek would also do."""
    return SimCase.model_validate({
        "id": case_id, "source": "movielens", "catalog": "tests",
        "persona": {"name": "test", "patience": 6, **persona},
        "need": {"target_ids": ["8"], "target_titles": ["Amelie (2001)"],
                 "target_attributes": ["genre=Comedy", "genre=Romance", "decade=2000s", "tag=paris", "tag=quirky"],
                 "must_have": ["genre=Romance"], "must_not": ["genre=Horror"], "acceptable_ids": ["2"]},
    })


def tiny_service() -> ConversationService:
    """The real service over tiny_movies, template replies (no model)."""
    return ConversationService(tiny_movies(), model=None)
