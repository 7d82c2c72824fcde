"""Test-wide switches: real LLM calls are off unless a test is marked `local_llm`."""

from __future__ import annotations

import pytest

import agent.llm


@pytest.fixture(autouse=True)
def _real_llm_switch(request: pytest.FixtureRequest):
    """Forbid real model calls by accident; allow them for tests marked for the real local model."""
    previous = agent.llm.ALLOW_REAL_CALLS
    agent.llm.ALLOW_REAL_CALLS = request.node.get_closest_marker("local_llm") is not None
    yield
    agent.llm.ALLOW_REAL_CALLS = previous


@pytest.fixture(autouse=True, scope="session")
def _hypothesis_home_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory):
    """Hypothesis keeps caches in ./.hypothesis by default: keep them out of the source tree."""
    try:
        from hypothesis.configuration import set_hypothesis_home_dir
    except ImportError:  # hypothesis comes with schemathesis (the dev extra); without it nothing is written
        return
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
