"""`load_catalog`: detect a catalog's layout and load it whole, or raise a CatalogError naming file and line.

Loaders build everything in local variables and return a Catalog only at the end; they never write files
or touch module state, so a failed load leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path

from retrieval.catalog import Catalog, CatalogError
from retrieval.custom import ITEM_FILES, SUFFIXES, load_custom
from retrieval.movielens import load_movielens
from retrieval.unicorn import ITEM_DICT, load_unicorn

__all__ = ["ACCEPTED_LAYOUTS", "detect_layout", "load_catalog"]

ACCEPTED_LAYOUTS = (
    "accepted layouts: a MovieLens folder (movies.csv + ratings.csv); "
    f"a UNICORN/SCPR LastFM folder ({ITEM_DICT}); "
    "a custom items file (.jsonl or .csv); "
    "or a folder with items.jsonl or items.csv (optional interactions.jsonl/.csv and catalog.json)"
)


def detect_layout(path: Path) -> str:
    """'movielens', 'unicorn' or 'custom'; a CatalogError listing the accepted layouts otherwise."""
    if not path.exists():
        raise CatalogError(str(path), None, f"no such file or folder; {ACCEPTED_LAYOUTS}")
    if path.is_dir():
        if (path / "movies.csv").is_file() and (path / "ratings.csv").is_file():
            return "movielens"
        if (path / ITEM_DICT).is_file():
            return "unicorn"
        if any((path / name).is_file() for name in ITEM_FILES):
            return "custom"
        raise CatalogError(str(path), None, f"not a recognised catalog folder; {ACCEPTED_LAYOUTS}")
    if path.suffix.lower() in SUFFIXES:
        return "custom"
    raise CatalogError(str(path), None, f"unsupported file extension {path.suffix or '(none)'!r}; {ACCEPTED_LAYOUTS}")


def load_catalog(path: str | Path) -> Catalog:
    """Load a MovieLens, UNICORN/SCPR LastFM or custom catalog from `path`."""
    path = Path(path)
    layout = detect_layout(path)
    if layout == "movielens":
        return load_movielens(path)
    if layout == "unicorn":
        return load_unicorn(path)
    return load_custom(path)
