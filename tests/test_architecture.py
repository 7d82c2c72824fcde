"""The folders show the architecture: imports only point down `retrieval < agent, tools < conversation < evals
< ui`, no two top-level folders import each other (directly or round a cycle), and modules and functions
stay short."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = {"retrieval": 0, "agent": 1, "tools": 1, "conversation": 2, "evals": 3, "ui": 4}


def imports() -> list[tuple[str, str, str, int]]:
    """(folder, imported folder, module, line) for every import of another top-level folder, lazy ones too."""
    found = []
    for folder in LAYER:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    target = name.split(".")[0]
                    if target in LAYER and target != folder:
                        found.append((folder, target, str(path.relative_to(ROOT)), node.lineno))
    return found


def test_no_import_points_up_the_layers():
    upward = [f"{module}:{line} imports {target}" for folder, target, module, line in imports()
              if LAYER[target] > LAYER[folder]]
    assert not upward, "imports pointing up the layers:\n" + "\n".join(upward)


def test_no_cycle_between_top_level_folders():
    edges: dict[str, set[str]] = {folder: set() for folder in LAYER}
    for folder, target, _module, _line in imports():
        edges[folder].add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in edges[start])

    cycles = sorted(folder for folder in LAYER if reaches(folder, folder, {folder}))
    assert not cycles, f"folders on an import cycle: {cycles} ({ {f: sorted(t) for f, t in edges.items()} })"


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def _modules() -> list[Path]:
    return [p for folder in LAYER for p in sorted((ROOT / folder).rglob("*.py"))]


def test_short_modules_and_functions():
    """No module over 400 lines and no function over 60 lines outside tests (CONVENTIONS: short modules)."""
    long_modules = [f"{p.relative_to(ROOT)}: {n} lines" for p in _modules()
                    if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    long_functions = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not long_modules and not long_functions, "\n".join(long_modules + long_functions)
