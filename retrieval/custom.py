"""A user's own catalog: items as JSONL or CSV, optional interactions and a `catalog.json` manifest.

The format is documented in docs/catalog-format.md; keep the two in step.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from retrieval.catalog import Catalog, CatalogError, Interaction, Item
from retrieval.catalog_io import iter_csv_rows, iter_lines, json_type, read_json_document

ATTRIBUTE_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
ATTRIBUTE_TYPE_RULE = "lower-case letters, digits and '_', starting with a letter, at most 32 characters"
BUILTIN_ATTRIBUTE_TYPES = frozenset(
    "genre tag decade year category brand color size material style price_range "
    "cuisine artist director actor language country author".split()
)
ITEM_FIELDS = ("id", "title", "text", "description", "attributes", "people", "keywords")
# People an item names; each role becomes an attribute type that the chat links by name in free text.
PEOPLE_ROLES = frozenset("director actor star cast writer author artist creator".split())
INTERACTION_FIELDS = ("user", "item", "rating", "timestamp")
MANIFEST_FIELDS = ("name", "attribute_types")
MAX_ID_CHARS = 200
MAX_TITLE_CHARS = 1000
ITEM_FILES = ("items.jsonl", "items.csv")
INTERACTION_FILES = ("interactions.jsonl", "interactions.csv")
MANIFEST = "catalog.json"
SUFFIXES = (".jsonl", ".csv")

Record = dict[str, object]


class _RecordError(Exception):
    """A problem with one record; the caller adds the file and line."""


@dataclass(frozen=True)
class Manifest:
    name: str | None
    attribute_types: frozenset[str]


def load_custom(path: Path) -> Catalog:
    """Load an items file (.jsonl/.csv) or a folder with items.*, optional interactions.* and catalog.json."""
    manifest: Manifest | None = None
    interactions_file: Path | None = None
    if path.is_dir():
        items_file = _one_of(path, ITEM_FILES)
        if items_file is None:
            raise CatalogError(str(path), None, f"folder has no {' or '.join(ITEM_FILES)}")
        interactions_file = _one_of(path, INTERACTION_FILES)
        if (path / MANIFEST).is_file():
            manifest = read_manifest(path / MANIFEST)
        default_name = path.resolve().name
    else:
        items_file, default_name = path, path.stem
    types = manifest.attribute_types if manifest else BUILTIN_ATTRIBUTE_TYPES
    items = read_items(items_file, types)
    known = {item.id for item in items}
    interactions = read_interactions(interactions_file, known) if interactions_file else []
    name = (manifest.name if manifest else None) or default_name
    return Catalog(name=name, items=items, interactions=interactions, source=str(path))


def _one_of(folder: Path, names: tuple[str, ...]) -> Path | None:
    present = [folder / name for name in names if (folder / name).is_file()]
    if len(present) > 1:
        raise CatalogError(str(folder), None, f"both {' and '.join(p.name for p in present)} exist; keep one")
    return present[0] if present else None


def read_manifest(path: Path) -> Manifest:
    """`{"name": str?, "attribute_types": [str, ...]}`: declares the attribute types items may use."""
    document = read_json_document(path)
    if not isinstance(document, dict):
        raise CatalogError(str(path), None, f"manifest must be a JSON object, got {json_type(document)}")
    unknown = sorted(set(document) - set(MANIFEST_FIELDS))
    if unknown:
        raise CatalogError(str(path), None, f"unknown field {unknown[0]!r} (allowed: {', '.join(MANIFEST_FIELDS)})")
    name = document.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise CatalogError(str(path), None, "field 'name' must be a non-blank string")
    types = document.get("attribute_types")
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise CatalogError(str(path), None, "field 'attribute_types' must be a list of strings")
    for kind in types:
        if not ATTRIBUTE_TYPE.match(kind):
            raise CatalogError(str(path), None, f"attribute type {kind!r} is not a valid name ({ATTRIBUTE_TYPE_RULE})")
    return Manifest(name=name.strip() if name else None, attribute_types=frozenset(types))


def read_items(path: Path, types: frozenset[str]) -> list[Item]:
    """Every item of a .jsonl or .csv items file, or a CatalogError for the first bad line."""
    records = _jsonl_records(path) if path.suffix.lower() == ".jsonl" else _csv_item_records(path, types)
    items: list[Item] = []
    first_line: dict[str, int] = {}
    for line, record in records:
        try:
            item = _item_from_record(record, types)
        except _RecordError as exc:
            raise CatalogError(str(path), line, str(exc)) from None
        if item.id in first_line:
            raise CatalogError(str(path), line, f"duplicate id {item.id!r} (first on line {first_line[item.id]})")
        first_line[item.id] = line
        items.append(item)
    if not items:
        raise CatalogError(str(path), None, "no items (the file is empty or has only blank lines)")
    return items


def read_interactions(path: Path, known: set[str]) -> list[Interaction]:
    """Every interaction of a .jsonl or .csv file; each must name a known item."""
    records = _jsonl_records(path) if path.suffix.lower() == ".jsonl" else _csv_interaction_records(path)
    rows: list[Interaction] = []
    for line, record in records:
        try:
            rows.append(_interaction_from_record(record, known))
        except _RecordError as exc:
            raise CatalogError(str(path), line, str(exc)) from None
    return rows


def _jsonl_records(path: Path) -> Iterator[tuple[int, object]]:
    for line, text in iter_lines(path):
        if not text.strip():
            continue
        try:
            yield line, json.loads(text)
        except json.JSONDecodeError as exc:
            hint = "; the last line looks truncated" if not text.endswith("\n") else ""
            raise CatalogError(str(path), line, f"invalid JSON: {exc.msg} (column {exc.colno}){hint}") from None
        except RecursionError:
            raise CatalogError(str(path), line, "invalid JSON: nested too deeply") from None


def _csv_header(path: Path, rows: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str]] | None:
    first = next(rows, None)
    if first is None:
        return None
    line, header = first
    header = [column.strip() for column in header]
    for index, column in enumerate(header):
        if column in header[:index]:
            raise CatalogError(str(path), line, f"column {column!r} appears twice in the header")
    return line, header


def _checked_rows(path: Path, rows: Iterator[tuple[int, list[str]]], header: list[str]) -> Iterator[tuple[int, Record]]:
    for line, row in rows:
        if len(row) != len(header):
            raise CatalogError(str(path), line, f"row has {len(row)} fields, header has {len(header)}")
        yield line, dict(zip(header, row, strict=True))


def _csv_item_records(path: Path, types: frozenset[str]) -> Iterator[tuple[int, Record]]:
    rows = iter_csv_rows(path)
    found = _csv_header(path, rows)
    if found is None:
        return
    line, header = found
    for required in ("id", "title"):
        if required not in header:
            raise CatalogError(str(path), line, f"header is missing required column {required!r}")
    for column in header:
        if column.startswith("attr:"):
            try:
                _check_type(column[len("attr:") :], types)
            except _RecordError as exc:
                raise CatalogError(str(path), line, f"column {column!r}: {exc}") from None
        elif column.startswith("people:"):
            if column[len("people:") :] not in PEOPLE_ROLES:
                raise CatalogError(str(path), line, f"column {column!r}: role must be one of {', '.join(sorted(PEOPLE_ROLES))}")
        elif column not in ("id", "title", "text", "description", "keywords"):
            allowed = "id, title, text, description, keywords, attr:<type>, people:<role>"
            raise CatalogError(str(path), line, f"unknown column {column!r} (allowed: {allowed})")
    for line, cells in _checked_rows(path, rows, header):
        record: Record = {k: v for k, v in cells.items() if k in ("id", "title") or (k in ("text", "description") and v)}
        if "keywords" in cells:
            record["keywords"] = cells["keywords"].split("|")
        record["attributes"] = {k[len("attr:") :]: v.split("|") for k, v in cells.items() if k.startswith("attr:")}
        people = {k[len("people:") :]: v.split("|") for k, v in cells.items() if k.startswith("people:")}
        if people:
            record["people"] = people
        yield line, record


def _csv_interaction_records(path: Path) -> Iterator[tuple[int, Record]]:
    rows = iter_csv_rows(path)
    found = _csv_header(path, rows)
    if found is None:
        return
    line, header = found
    for column in header:
        if column not in INTERACTION_FIELDS:
            raise CatalogError(str(path), line, f"unknown column {column!r} (allowed: {', '.join(INTERACTION_FIELDS)})")
    for required in ("user", "item"):
        if required not in header:
            raise CatalogError(str(path), line, f"header is missing required column {required!r}")
    for line, cells in _checked_rows(path, rows, header):
        try:
            record: Record = {"user": cells["user"], "item": cells["item"]}
            if cells.get("rating", "").strip():
                record["rating"] = _csv_number(cells["rating"], "rating", float)
            if cells.get("timestamp", "").strip():
                record["timestamp"] = _csv_number(cells["timestamp"], "timestamp", int)
        except _RecordError as exc:
            raise CatalogError(str(path), line, str(exc)) from None
        yield line, record


def _csv_number(text: str, field: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text.strip())
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise _RecordError(f"field {field!r} must be {expected}, got {text!r}") from None


def _item_from_record(record: object, types: frozenset[str]) -> Item:
    fields = _object_with_fields(record, ITEM_FIELDS)
    item_id = _required_string(fields, "id", MAX_ID_CHARS)
    title = _required_string(fields, "title", MAX_TITLE_CHARS)
    if fields.get("text") is not None and fields.get("description") is not None:
        raise _RecordError("give 'text' or 'description' (the same thing), not both")
    name = "text" if fields.get("text") is not None else "description"
    text = fields.get(name)
    if text is not None and not isinstance(text, str):
        raise _RecordError(f"field {name!r} must be a string, got {json_type(text)}")
    attributes = _attributes(fields.get("attributes"), types)
    people = fields.get("people")
    if people is not None:
        if not isinstance(people, dict) or not set(people) <= PEOPLE_ROLES:
            raise _RecordError(f"field 'people' must map roles ({', '.join(sorted(PEOPLE_ROLES))}) to names")
        for role, names in _attributes(people, PEOPLE_ROLES).items():
            attributes[role] = list(dict.fromkeys([*attributes.get(role, []), *names]))
    keywords = fields.get("keywords")
    if keywords is not None and (not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords)):
        raise _RecordError("field 'keywords' must be a list of strings")
    try:
        return Item(id=item_id, title=title, text=text or "", attributes=attributes, keywords=_clean(keywords or []))
    except ValidationError as exc:
        error = exc.errors()[0]
        raise _RecordError(f"invalid {'.'.join(map(str, error['loc']))}: {error['msg']}") from None


def _interaction_from_record(record: object, known: set[str]) -> Interaction:
    fields = _object_with_fields(record, INTERACTION_FIELDS)
    user = _required_string(fields, "user", MAX_ID_CHARS)
    item = _required_string(fields, "item", MAX_ID_CHARS)
    if item not in known:
        raise _RecordError(f"interaction names unknown item {item!r}")
    rating, timestamp = fields.get("rating"), fields.get("timestamp")
    if rating is not None and (json_type(rating) != "number" or not math.isfinite(rating)):
        raise _RecordError(f"field 'rating' must be a finite number, got {json_type(rating)} {rating!r}")
    if timestamp is not None and (json_type(timestamp) != "number" or not isinstance(timestamp, int)):
        raise _RecordError(f"field 'timestamp' must be an integer, got {json_type(timestamp)} {timestamp!r}")
    return Interaction(user=user, item=item, rating=rating, timestamp=timestamp)


def _object_with_fields(record: object, allowed: tuple[str, ...]) -> dict[str, object]:
    if not isinstance(record, dict):
        raise _RecordError(f"expected a JSON object, got {json_type(record)}")
    unknown = [key for key in record if key not in allowed]
    if unknown:
        raise _RecordError(f"unknown field {unknown[0]!r} (allowed: {', '.join(allowed)})")
    return record


def _required_string(fields: dict[str, object], name: str, max_chars: int) -> str:
    if name not in fields:
        raise _RecordError(f"missing required field {name!r}")
    value = fields[name]
    if not isinstance(value, str):
        raise _RecordError(f"field {name!r} must be a string, got {json_type(value)}")
    value = value.strip()
    if not value:
        raise _RecordError(f"field {name!r} is blank")
    if len(value) > max_chars:
        raise _RecordError(f"field {name!r} is longer than {max_chars} characters ({len(value)})")
    return value


def _attributes(raw: object, types: frozenset[str]) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _RecordError(f"field 'attributes' must be an object, got {json_type(raw)}")
    attributes: dict[str, list[str]] = {}
    for kind, values in raw.items():
        _check_type(kind, types)
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _RecordError(f"values of attribute {kind!r} must be a string or a list of strings")
        cleaned = _clean(values)
        if cleaned:
            attributes[kind] = cleaned
    return attributes


def _check_type(kind: str, types: frozenset[str]) -> None:
    if not ATTRIBUTE_TYPE.match(kind):
        raise _RecordError(f"attribute type {kind!r} is not a valid name ({ATTRIBUTE_TYPE_RULE})")
    if kind not in types:
        if types is BUILTIN_ATTRIBUTE_TYPES:
            where = f"built-in types: {', '.join(sorted(types))}; declare others in {MANIFEST}"
        else:
            where = f"declared in {MANIFEST}: {', '.join(sorted(types))}"
        raise _RecordError(f"unknown attribute type {kind!r} ({where})")


def _clean(values: list[str]) -> list[str]:
    """Stripped, non-blank, first occurrence kept."""
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))
