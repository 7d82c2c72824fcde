"""The benchmark data next to the repository (`../shared/data`): the tests that read it skip when it is absent.

`TEST_SHARED_DATA=/some/folder` points the tests elsewhere (a folder that does not exist shows the skips).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("TEST_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def needs_shared_data(*parts: str) -> pytest.MarkDecorator:
    """Skip unless SHARED_DATA/parts exists, saying which file or folder is missing."""
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"needs the shared benchmark data, absent here: {path}")
