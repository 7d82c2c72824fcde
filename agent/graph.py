"""The item–attribute graph that CPR reasons on: sparse adjacency, candidate pruning along the path.

Items and attributes are nodes; an edge joins an item to each attribute value it carries. Users attach to
items through interactions (the ranker holds that side). Pruning follows the conversation's path: accepted
attributes keep the items adjacent to them, rejected attributes and rejected or shown items remove.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from agent.state import Attr, ConvState
from retrieval.catalog import Catalog


# People roles: a person named in chat matches any of them ("with Bruce Willis" keeps the films he acted in,
# wrote or directed), whichever role the matcher or linker read the name as.
PEOPLE_TYPES = ("director", "actor", "star", "writer", "cast", "artist", "author", "creator")


class ItemAttributeGraph:
    """Sparse item × attribute adjacency over the attribute types the agent may ask about."""

    def __init__(self, catalog: Catalog, *, types: Sequence[str] | None = None) -> None:
        self.ids = list(catalog.items)
        self.id_array = np.asarray(self.ids, dtype=object)  # rows -> ids in one C call (`ids_of`)
        self.row_of = {item_id: row for row, item_id in enumerate(self.ids)}
        wanted = set(types) if types else None
        columns: dict[Attr, int] = {}
        rows, cols = [], []
        for row, item in enumerate(catalog.items.values()):
            for kind, values in item.attributes.items():
                if wanted is not None and kind not in wanted:
                    continue
                for value in values:
                    col = columns.setdefault(Attr(type=kind, value=value), len(columns))
                    rows.append(row)
                    cols.append(col)
        self.attrs = list(columns)
        self.col_of = columns
        data = np.ones(len(rows), dtype=np.float32)
        self.item_attr = sp.csr_matrix((data, (rows, cols)), shape=(len(self.ids), len(self.attrs)))
        self.item_attr.sum_duplicates()
        self.item_attr.data[:] = 1.0
        self.attr_item = self.item_attr.T.tocsr()
        self.support = np.asarray(self.item_attr.sum(axis=0), dtype=np.int64).ravel()

    def __len__(self) -> int:
        return len(self.ids)

    def items_with(self, attr: Attr) -> np.ndarray:
        """Rows of the items adjacent to an attribute (empty if the catalog has no such value)."""
        if attr.type in PEOPLE_TYPES:
            cols = [c for c in (self.col_of.get(Attr(type=t, value=attr.value)) for t in PEOPLE_TYPES) if c is not None]
        else:
            cols = [self.col_of[attr]] if attr in self.col_of else []
        parts = [self.attr_item.indices[self.attr_item.indptr[c]:self.attr_item.indptr[c + 1]] for c in cols]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return (np.unique(np.concatenate(parts)) if len(parts) > 1 else parts[0]).astype(np.int64)

    def attributes_of(self, row: int) -> list[Attr]:
        start, end = self.item_attr.indptr[row], self.item_attr.indptr[row + 1]
        return [self.attrs[c] for c in self.item_attr.indices[start:end]]

    def ids_of(self, rows: np.ndarray) -> list[str]:
        return self.id_array[rows].tolist()

    def rows(self, ids: Iterable[str]) -> np.ndarray:
        return np.asarray([self.row_of[i] for i in ids if i in self.row_of], dtype=np.int64)

    def candidate_mask(self, state: ConvState, *, exclude_shown: bool = True, prune_rejected: bool = True) -> np.ndarray:
        """Items adjacent to the most accepted attributes (all of them when any item has all), none of the
        rejected ones (unless `prune_rejected` is off: then a "no" only lowers scores, see
        `CPRPolicy.scores`), and not rejected (or already shown) items."""
        keep = np.ones(len(self.ids), dtype=bool)
        if state.accepted:
            hits = np.zeros(len(self.ids), dtype=np.int32)
            for attr in state.accepted:
                hits[self.items_with(attr)] += 1
            keep &= hits == hits.max()
        for attr in state.rejected if prune_rejected else ():
            keep[self.items_with(attr)] = False
        gone = [*state.rejected_items, *state.named_items, *(state.shown_items if exclude_shown else ())]
        keep[self.rows(gone)] = False
        return keep

    def rejected_counts(self, state: ConvState) -> np.ndarray:
        """For every item, how many of the rejected attributes it carries."""
        counts = np.zeros(len(self.ids), dtype=np.float64)
        for attr in state.rejected:
            counts[self.items_with(attr)] += 1.0
        return counts

    def attribute_mass(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """For every attribute, the total weight of the given candidate rows adjacent to it."""
        return np.asarray(self.item_attr[rows].T @ weights, dtype=np.float64).ravel()

    def attribute_counts(self, rows: np.ndarray) -> np.ndarray:
        return np.bincount(self.item_attr[rows].indices, minlength=len(self.attrs))
