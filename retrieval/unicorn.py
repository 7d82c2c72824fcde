"""UNICORN / SCPR LastFM loader (the `lastfm` and `lastfm_star` benchmark folders).

Items are the benchmark's item indexes (as strings), titled with the real artist names; attributes are
the real tag names, and `Catalog.attribute_ids` maps each name back to the benchmark's feature index,
which is what the rule-based user simulator speaks in.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from retrieval.catalog import Catalog, CatalogError, Interaction, Item
from retrieval.catalog_io import build_interactions, json_type, read_json_document

ITEM_DICT = "Graph_generate_data/item_dict.json"
TRAIN = "Graph_generate_data/user_item_train.json"
ITEM_NAMES = "ID_map_info/item_reverse_map.json"
TAG_NAMES = "ID_map_info/tag_reverse_map.json"
SPLITS = {name: f"UI_Interaction_data/review_dict_{name}.json" for name in ("train", "valid", "test")}
MAX_TAGS_IN_TEXT = 10


def load_unicorn(folder: Path) -> Catalog:
    """Load a UNICORN/SCPR LastFM folder; the catalog is named after the folder (lastfm, lastfm_star)."""
    for relative in (ITEM_DICT, TRAIN, ITEM_NAMES, TAG_NAMES, *SPLITS.values()):
        if not (folder / relative).is_file():
            raise CatalogError(str(folder / relative), None, "missing file required by the UNICORN/SCPR layout")
    tag_names = _read_names(folder / TAG_NAMES)
    attribute_ids = _unique_names(tag_names)
    name_of = {feature_id: name for name, feature_id in attribute_ids.items()}
    items = _read_items(folder / ITEM_DICT, _read_names(folder / ITEM_NAMES), name_of)
    known = {item.id for item in items}
    train = _read_user_items(folder / TRAIN, known)
    split_pairs = {name: _read_user_items(folder / relative, known) for name, relative in SPLITS.items()}
    shared = _shared_interactions(folder / TRAIN, [train, *split_pairs.values()])
    interactions = [shared[pair] for pair in train]
    splits = {name: [shared[pair] for pair in rows] for name, rows in split_pairs.items()}
    return Catalog(
        name=folder.resolve().name,
        items=items,
        interactions=interactions,
        splits=splits,
        source=str(folder),
        attribute_ids=attribute_ids,
    )


def _object(path: Path) -> dict:
    document = read_json_document(path)
    if not isinstance(document, dict):
        raise CatalogError(str(path), None, f"expected a JSON object at the top level, got {json_type(document)}")
    return document


def _read_names(path: Path) -> dict[str, str]:
    """An id -> name map from a `*_reverse_map.json` ({id: {"real_name": [name], ...}})."""
    names: dict[str, str] = {}
    for key, entry in _object(path).items():
        real = entry.get("real_name") if isinstance(entry, dict) else None
        if not isinstance(real, list) or not real or not isinstance(real[0], str):
            raise CatalogError(str(path), None, f"entry {key!r} has no \"real_name\": [string]")
        names[key] = real[0].strip()
    return names


def _unique_names(tag_names: dict[str, str]) -> dict[str, str]:
    """Tag name -> feature id; a name shared by several ids gets the id appended so none is lost."""
    by_name: dict[str, str] = {}
    for feature_id in sorted(tag_names, key=_numeric_first):
        name = tag_names[feature_id] or f"tag {feature_id}"
        if name in by_name:
            name = f"{name} (#{feature_id})"
        by_name[name] = feature_id
    return by_name


def _numeric_first(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.isdigit() else (1, key)


def _read_items(path: Path, titles: dict[str, str], name_of: dict[str, str]) -> list[Item]:
    items: list[Item] = []
    for item_id, entry in sorted(_object(path).items(), key=lambda pair: _numeric_first(pair[0])):
        features = entry.get("feature_index") if isinstance(entry, dict) else None
        if not isinstance(features, list) or not all(isinstance(f, int) and not isinstance(f, bool) for f in features):
            raise CatalogError(str(path), None, f"item {item_id!r}: \"feature_index\" must be a list of integers")
        missing = [f for f in features if str(f) not in name_of]
        if missing:
            raise CatalogError(str(path), None, f"item {item_id!r}: feature {missing[0]} is not in {TAG_NAMES}")
        if item_id not in titles:
            raise CatalogError(str(path), None, f"item {item_id!r} has no name in {ITEM_NAMES}")
        tags = list(dict.fromkeys(name_of[str(f)] for f in features))
        items.append(_build_item(path, item_id, titles[item_id], tags))
    if not items:
        raise CatalogError(str(path), None, "no items")
    return items


def _build_item(path: Path, item_id: str, title: str, tags: list[str]) -> Item:
    more = len(tags) - MAX_TAGS_IN_TEXT
    shown = ", ".join(tags[:MAX_TAGS_IN_TEXT]) + (f" and {more} more" if more > 0 else "")
    text = f"{title}: an artist tagged {shown}." if tags else f"{title}: an artist."
    try:
        return Item(id=item_id, title=title, text=text, attributes={"tag": tags} if tags else {}, keywords=tags)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise CatalogError(str(path), None, f"item {item_id!r}: invalid {error['loc'][0]}: {error['msg']}") from None


def _shared_interactions(path: Path, lists: list[list[tuple[str, str]]]) -> dict[tuple[str, str], Interaction]:
    """One validated Interaction per distinct pair: the train split repeats user_item_train.json."""
    distinct = list(dict.fromkeys(pair for rows in lists for pair in rows))
    built = build_interactions(path, [{"user": user, "item": item} for user, item in distinct])
    return dict(zip(distinct, built, strict=True))


def _read_user_items(path: Path, known: set[str]) -> list[tuple[str, str]]:
    """`{user: [item, ...]}` as (user, item) pairs, checking every item exists."""
    rows: list[tuple[str, str]] = []
    for user, entries in _object(path).items():
        if not user.strip():
            raise CatalogError(str(path), None, "a user id is blank")
        if not isinstance(entries, list):
            raise CatalogError(str(path), None, f"user {user!r}: expected a list of item ids, got {json_type(entries)}")
        for entry in entries:
            item = str(entry) if isinstance(entry, int | str) and not isinstance(entry, bool) else None
            if item not in known:
                raise CatalogError(str(path), None, f"user {user!r} names unknown item {entry!r}")
            rows.append((user, item))
    return rows
