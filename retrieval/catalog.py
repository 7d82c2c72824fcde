"""Catalog data types: items with typed attributes, interactions, and the in-memory catalog."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Item(BaseModel):
    """A catalog item. `attributes` maps an attribute type (genre, tag, decade, ...) to its values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=1000)
    text: str = ""
    attributes: dict[str, list[str]] = Field(default_factory=dict)
    keywords: list[str] = Field(default_factory=list)

    @field_validator("id", "title")
    @classmethod
    def _strip_nonblank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    def has(self, attribute: str) -> bool:
        """True if any attribute value equals `attribute` (a value such as "Comedy")."""
        return attribute in self.attribute_values

    @cached_property
    def attribute_values(self) -> frozenset[str]:
        return frozenset(v for values in self.attributes.values() for v in values)


class Attr(BaseModel):
    """One attribute value of a given type, e.g. genre=Comedy."""

    model_config = ConfigDict(frozen=True)

    type: str
    value: str

    def __str__(self) -> str:
        return f"{self.type}={self.value}"


def item_attrs(item: Item) -> set[Attr]:
    """An item's attributes as typed values, e.g. {genre=Comedy, decade=1990s}."""
    return {Attr(type=kind, value=value) for kind, values in item.attributes.items() for value in values}


class Interaction(BaseModel):
    """A user-item interaction: a rating, a listen, a purchase."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str = Field(min_length=1)
    item: str = Field(min_length=1)
    rating: float | None = None
    timestamp: int | None = None


class CatalogError(ValueError):
    """A catalog could not be loaded; the message names the file and line."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path = str(path)
        self.line = line
        self.reason = reason


class Catalog:
    """Items, their interactions and optional evaluation splits, loaded whole or not at all."""

    def __init__(
        self,
        *,
        name: str,
        items: Iterable[Item],
        interactions: Iterable[Interaction] = (),
        splits: dict[str, list[Interaction]] | None = None,
        source: str = "",
        attribute_ids: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.source = source
        # Attribute value -> the source dataset's own id for it (LastFM feature indexes); empty otherwise.
        self.attribute_ids: dict[str, str] = dict(attribute_ids or {})
        self.items: dict[str, Item] = {}
        for item in items:
            if item.id in self.items:
                raise ValueError(f"duplicate item id {item.id!r}")
            self.items[item.id] = item
        self.interactions: list[Interaction] = list(interactions)
        self.splits: dict[str, list[Interaction]] = splits or {}

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.items

    def get(self, item_id: str) -> Item | None:
        return self.items.get(item_id)

    @cached_property
    def attribute_counts(self) -> dict[str, Counter[str]]:
        """For each attribute type, how many items carry each value."""
        counts: dict[str, Counter[str]] = {}
        for item in self.items.values():
            for kind, values in item.attributes.items():
                counts.setdefault(kind, Counter()).update(set(values))
        return counts

    @cached_property
    def attribute_type_of(self) -> dict[str, str]:
        """Value -> its attribute type (the first type seen wins for a value used by several)."""
        owner: dict[str, str] = {}
        for kind, counter in self.attribute_counts.items():
            for value in counter:
                owner.setdefault(value, kind)
        return owner

    @cached_property
    def popularity(self) -> dict[str, float]:
        """Interaction count per item (train split when there is one, else all interactions)."""
        source = self.splits.get("train", self.interactions)
        counts = Counter(i.item for i in source)
        return {item_id: float(counts.get(item_id, 0)) for item_id in self.items}

    def fingerprint(self) -> str:
        """A stable hash of the items (ids, titles, text, attributes): keys caches and indexes."""
        digest = hashlib.sha256()
        for item_id in sorted(self.items):
            digest.update(self.items[item_id].model_dump_json().encode())
        return digest.hexdigest()[:16]

    def stats(self) -> dict[str, object]:
        """Counts a person or a check can read: items, attributes per type, interactions, splits."""
        users = {i.user for i in self.interactions} | {i.user for s in self.splits.values() for i in s}
        return {
            "name": self.name,
            "source": self.source,
            "items": len(self.items),
            "attributes": sum(len(c) for c in self.attribute_counts.values()),
            "attribute_types": {kind: len(c) for kind, c in sorted(self.attribute_counts.items())},
            "interactions": len(self.interactions),
            "users": len(users),
            "splits": {name: len(rows) for name, rows in sorted(self.splits.items())},
        }
