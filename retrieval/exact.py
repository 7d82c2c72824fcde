"""Exact vector search: the brute-force top-k over a row matrix, the in-memory index used as a fake and a
baseline, and what every vector index shares (the document text of an item, hits)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrieval.catalog import Catalog, Item
from retrieval.embeddings import Embedder

# (total, label) -> a context giving advance(n): how an entry point shows progress (rich lives outside retrieval).
ProgressFactory = Callable[[int | None, str], AbstractContextManager[Callable[[int], None]]]

MAX_VALUES_PER_KIND = 50

_blas_limited = False


def single_thread_blas() -> None:
    """Run numpy's BLAS on one thread in this process (once; later calls do nothing).

    Query-time products are a matrix times one vector: memory-bound, so a second thread gains nothing,
    and when every core is busy OpenBLAS threads wait for each other: on a loaded 2-core machine a
    10k x 384 product went from p95 0.9 ms (one thread) to p95 665 ms (two threads).
    """
    global _blas_limited
    if _blas_limited:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    _blas_limited = True


def item_document(item: Item) -> str:
    """What gets embedded: the title, the description, then the attributes by type."""
    text = item.text.strip()
    head = text if item.title.lower() in text.lower() else f"{item.title}. {text}".strip()
    kinds = [f"{kind}: {', '.join(values[:MAX_VALUES_PER_KIND])}" for kind, values in item.attributes.items() if values]
    return " ".join([head, *(f"{k}." for k in kinds)]) if kinds else head


@dataclass(frozen=True)
class VectorHit:
    """An item found by meaning, with its cosine similarity to the query."""

    id: str
    score: float


def similarities(matrix: np.ndarray | None, vector: np.ndarray, rows: np.ndarray | Sequence[int]) -> np.ndarray:
    """Dot products of `vector` with the given rows of `matrix`, in the order of `rows`."""
    rows = np.asarray(rows, dtype=np.int64)
    if matrix is None or len(rows) == 0:
        return np.zeros(len(rows), dtype=np.float32)
    if len(rows) == len(matrix) and np.array_equal(rows, np.arange(len(matrix))):
        return np.asarray(matrix @ vector, dtype=np.float32)
    order = np.argsort(rows, kind="stable")
    out = np.empty(len(rows), dtype=np.float32)
    out[order] = np.asarray(matrix[rows[order]] @ vector, dtype=np.float32)  # sorted reads suit a memory map
    return out


def exact_search(matrix: np.ndarray, ids: Sequence[str], vector: np.ndarray, *, k: int,
                 allowed: np.ndarray | None = None, exclude_rows: Sequence[int] = ()) -> list[VectorHit]:
    """Brute-force top-k by dot product over the allowed, non-excluded rows."""
    rows = np.arange(len(ids)) if allowed is None else np.flatnonzero(allowed)
    if len(exclude_rows):
        rows = np.setdiff1d(rows, np.asarray(exclude_rows, dtype=np.int64), assume_unique=True)
    if len(rows) == 0:
        return []
    sims = similarities(matrix, vector, rows)
    top = np.argpartition(-sims, k - 1)[:k] if len(rows) > k else np.arange(len(rows))
    top = top[np.lexsort((rows[top], -sims[top]))]
    return [VectorHit(ids[int(rows[t])], float(sims[t])) for t in top]


class MemoryVectorIndex:
    """Exact search over vectors held in memory, with VectorStore's search interface.

    The fake used by unit tests, and a baseline in the benchmark; nothing is persisted.
    """

    def __init__(self, ids: Sequence[str], vectors: np.ndarray, embedder: Embedder) -> None:
        self.ids = list(ids)
        self.row_of = {item_id: row for row, item_id in enumerate(self.ids)}
        single_thread_blas()
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.embedder = embedder

    @classmethod
    def build(cls, catalog: Catalog, embedder: Embedder) -> MemoryVectorIndex:
        ids = list(catalog.items)
        return cls(ids, embedder.embed([item_document(catalog.items[i]) for i in ids]), embedder)

    def __len__(self) -> int:
        return len(self.ids)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embedder.embed([text])[0]

    def search(self, query: str | np.ndarray, *, k: int = 20, allowed: np.ndarray | None = None,
               exclude_ids: Iterable[str] = (), **_ignored: Any) -> list[VectorHit]:
        vector = self.embed_query(query) if isinstance(query, str) else np.asarray(query, dtype=np.float32)
        exclude = [self.row_of[i] for i in exclude_ids if i in self.row_of]
        return exact_search(self.vectors, self.ids, vector, k=k, allowed=allowed, exclude_rows=exclude)

    def similarities(self, vector: np.ndarray, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        return similarities(self.vectors, vector, rows)


@contextmanager
def no_progress(total: int | None, label: str) -> Iterator[Callable[[int], None]]:
    """The progress factory that shows nothing (entry points pass a real one, e.g. `evals.progress.progress_bar`)."""
    yield lambda n: None
