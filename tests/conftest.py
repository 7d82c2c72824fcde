"""Test-wide switches: real LLM calls are off unless a test is marked `local_llm`."""

from __future__ import annotations

from pathlib import Path

import pytest

import agent.llm

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _real_llm_switch(request: pytest.FixtureRequest):
    """Forbid real model calls by accident; allow them for tests marked for the real local model."""
    previous = agent.llm.ALLOW_REAL_CALLS
    agent.llm.ALLOW_REAL_CALLS = request.node.get_closest_marker("local_llm") is not None
    yield
    agent.llm.ALLOW_REAL_CALLS = previous
