"""Every data file inside the packages ships in the wheel: pyproject's package-data matches each one."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_data_file_in_a_package_is_package_data():
    tool = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    packages = [pattern.rstrip("*") for pattern in tool["packages"]["find"]["include"]]
    patterns = tool["package-data"]
    missing = []
    for package in packages:
        for path in (REPO / package).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            # package-data patterns are relative to the nearest package listed, here the top-level one
            relative = path.relative_to(REPO / package).as_posix()
            if not any(fnmatch.fnmatch(relative, p) for p in patterns.get(package, [])):
                missing.append(f"{package}/{relative}")
    assert not missing, f"not in [tool.setuptools.package-data], so missing from the wheel: {missing}"
