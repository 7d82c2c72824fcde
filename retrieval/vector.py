"""Vector index: a chromadb PersistentClient collection of item embeddings, built incrementally.

Layout of a store folder:
- `chroma/`: the chromadb persistent client (HNSW, cosine; documents and attribute metadata per item);
- `vectors.npy`: the same vectors as a row matrix, memory-mapped for exact search inside a filter;
- `manifest.json`: catalog fingerprint, embedder, ids and per-item content hashes, written last;
- `write.lock`: held by the one writer; a second writer gets `VectorStoreLocked` within the timeout.

The embedding function is always passed explicitly (chromadb's default one downloads a model and fails
offline). Reopening a store whose manifest matches the catalog embeds nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from retrieval.catalog import Catalog, Item
from retrieval.embeddings import Embedder

# (total, label) -> a context giving advance(n): how an entry point shows progress (rich lives outside retrieval).
ProgressFactory = Callable[[int | None, str], AbstractContextManager[Callable[[int], None]]]
FORMAT_VERSION = 1
MAX_VALUES_PER_KIND = 50
# A filter keeping at least this share of the catalog is served by HNSW with over-fetching and a
# post-filter; narrower filters score exactly the allowed rows (few rows, cheap).
HNSW_FILTER_MIN_SHARE = 0.1
HNSW_OVERFETCH = 1.5
_NAME_BAD = re.compile(r"[^a-zA-Z0-9._-]+")


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


class VectorStoreError(RuntimeError):
    """The vector store cannot do what was asked; the message says why and what to do."""


class VectorStoreLocked(VectorStoreError):
    """Another writer holds the store's lock."""


def item_document(item: Item) -> str:
    """What gets embedded: the title, the description, then the attributes by type."""
    text = item.text.strip()
    head = text if item.title.lower() in text.lower() else f"{item.title}. {text}".strip()
    kinds = [f"{kind}: {', '.join(values[:MAX_VALUES_PER_KIND])}" for kind, values in item.attributes.items() if values]
    return " ".join([head, *(f"{k}." for k in kinds)]) if kinds else head


def item_metadata(item: Item) -> dict[str, Any]:
    """Chroma metadata: the title and one string-list field per attribute type (for `$contains`)."""
    meta: dict[str, Any] = {"title": item.title}
    for kind, values in item.attributes.items():
        if values:
            meta[f"attr_{kind}"] = [str(v) for v in values[:MAX_VALUES_PER_KIND]]
    return meta


def _content_hash(document: str, metadata: dict[str, Any]) -> str:
    payload = document + "\x00" + json.dumps(metadata, sort_keys=True)
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:16]


def chroma_settings() -> Any:
    """Client settings shared by every client of a path (chromadb refuses differing settings)."""
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def _embedding_function_class() -> type:
    """The chromadb EmbeddingFunction adapter, defined on first use so importing us stays cheap."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class ConciergeEmbeddingFunction(EmbeddingFunction[Documents]):
        """Our Embedder as a chromadb embedding function (never chromadb's downloading default)."""

        def __init__(self, embedder: Embedder | None = None, config: dict[str, Any] | None = None) -> None:
            self._embedder = embedder
            self._config = config or {"embedder": embedder.name, "dimension": embedder.dimension}

        def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 (chromadb's parameter name)
            if self._embedder is None:
                raise VectorStoreError("this collection was opened without an embedder; pass one to VectorStore")
            return list(self._embedder.embed(list(input)))

        @staticmethod
        def name() -> str:
            return "concierge"

        def get_config(self) -> dict[str, Any]:
            return dict(self._config)

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> ConciergeEmbeddingFunction:
            return ConciergeEmbeddingFunction(None, config)

        def default_space(self) -> str:
            return "cosine"

    return ConciergeEmbeddingFunction


@dataclass(frozen=True)
class VectorHit:
    """An item found by meaning, with its cosine similarity to the query."""

    id: str
    score: float


@dataclass(frozen=True)
class BuildReport:
    """What `ensure` did: nothing (fingerprint matched) or which items it embedded, updated, removed."""

    fingerprint: str
    skipped: bool
    embedded: int = 0
    removed: int = 0
    total: int = 0
    seconds: float = 0.0


class VectorStore:
    """One chromadb collection for one catalog and one embedder, plus its memory-mapped vector matrix."""

    def __init__(
        self,
        folder: Path,
        embedder: Embedder,
        *,
        writable: bool = True,
        lock_timeout: float = 3.0,
        hnsw: dict[str, Any] | None = None,
    ) -> None:
        import chromadb

        self.folder = Path(folder)
        self.embedder = embedder
        self.writable = writable
        self._lock: FileLock | None = None
        if writable:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(self.folder / "write.lock"))
            try:
                self._lock.acquire(timeout=lock_timeout)
            except Timeout:
                raise VectorStoreLocked(
                    f"vector store {self.folder} is open for writing by another process (lock file "
                    f"{self.folder / 'write.lock'}); wait for it to finish, or open it with writable=False"
                ) from None
        elif not (self.folder / "manifest.json").is_file():
            raise VectorStoreError(f"no vector store at {self.folder}; build it first (open it writable and call ensure)")
        self._client = chromadb.PersistentClient(path=str(self.folder / "chroma"), settings=chroma_settings())
        self._ef = _embedding_function_class()(embedder)
        self.collection_name = _NAME_BAD.sub("-", f"items-{embedder.name}-{embedder.dimension}").strip("-._")[:200]
        self._collection = self._open_collection(hnsw or {})
        self._load_sidecar()
        single_thread_blas()

    def _open_collection(self, hnsw: dict[str, Any]) -> Any:
        from chromadb.errors import NotFoundError

        try:
            return self._client.get_collection(self.collection_name, embedding_function=self._ef)
        except NotFoundError:
            if not self.writable:
                raise VectorStoreError(f"{self.folder} has no collection {self.collection_name!r}") from None
        config = {"space": "cosine", "ef_construction": 100, "ef_search": 100, "max_neighbors": 16,
                  "batch_size": 1000, "sync_threshold": 10_000, **hnsw}
        return self._client.create_collection(
            self.collection_name, embedding_function=self._ef, configuration={"hnsw": config}
        )

    # -- state on disk -------------------------------------------------------------------------------

    def _load_sidecar(self) -> None:
        manifest = self.folder / "manifest.json"
        self.manifest: dict[str, Any] = json.loads(manifest.read_text("utf-8")) if manifest.is_file() else {}
        if self.manifest.get("format") != FORMAT_VERSION or self.manifest.get("embedder") != self.embedder.name:
            self.manifest = {}
        self.ids: list[str] = list(self.manifest.get("ids", []))
        self.row_of = {item_id: row for row, item_id in enumerate(self.ids)}
        matrix = self.folder / "vectors.npy"
        self.vectors = np.load(matrix, mmap_mode="r") if self.manifest and matrix.is_file() else None

    @property
    def fingerprint(self) -> str | None:
        return self.manifest.get("fingerprint")

    def __len__(self) -> int:
        return len(self.ids)

    def count(self) -> int:
        """Items in the chroma collection (may exceed the manifest while a build is under way)."""
        return int(self._collection.count())

    def is_current(self, catalog: Catalog, fingerprint: str | None = None) -> bool:
        """True if this store already holds exactly this catalog for this embedder."""
        return bool(self.manifest) and self.fingerprint == (fingerprint or catalog.fingerprint()) and (
            self.vectors is not None and len(self.ids) == len(catalog) == self.count()
        )

    # -- building ------------------------------------------------------------------------------------

    def ensure(
        self,
        catalog: Catalog,
        *,
        vectors: np.ndarray | None = None,
        batch_size: int = 256,
        progress: ProgressFactory | None = None,
        fingerprint: str | None = None,
    ) -> BuildReport:
        """Make the store hold `catalog`: embed only new or changed items, drop removed ones.

        Idempotent: a second call with the same catalog embeds nothing. `vectors` (rows in catalog
        order) skips the embedder, for benchmarks with precomputed vectors.
        """
        started = time.perf_counter()
        fingerprint = fingerprint or catalog.fingerprint()
        if self.is_current(catalog, fingerprint):
            return BuildReport(fingerprint, skipped=True, total=len(self.ids))
        if not self.writable:
            raise VectorStoreError(f"{self.folder} holds another catalog version; open it writable to rebuild")
        if vectors is not None and vectors.shape != (len(catalog), self.embedder.dimension):
            raise VectorStoreError(f"vectors must have shape ({len(catalog)}, {self.embedder.dimension})")
        ids = list(catalog.items)
        docs = [item_document(catalog.items[i]) for i in ids]
        metas = [item_metadata(catalog.items[i]) for i in ids]
        hashes = [_content_hash(d, m) for d, m in zip(docs, metas, strict=True)]
        known_hash, known_vector = self._known()
        todo = [row for row, (i, h) in enumerate(zip(ids, hashes, strict=True)) if known_hash.get(i) != h]
        matrix = np.zeros((len(ids), self.embedder.dimension), dtype=np.float32)
        for row, item_id in enumerate(ids):
            if known_hash.get(item_id) == hashes[row]:
                matrix[row] = known_vector(item_id)
        with (progress or no_progress)(len(todo), f"embedding {len(todo)} items") as advance:
            for start in range(0, len(todo), batch_size):
                rows = todo[start : start + batch_size]
                if vectors is not None:
                    matrix[rows] = vectors[rows]
                else:
                    matrix[rows] = self.embedder.embed([docs[r] for r in rows], batch_size=batch_size)
                self._upsert([ids[r] for r in rows], matrix[rows], [docs[r] for r in rows],
                             [{**metas[r], "_h": hashes[r]} for r in rows])
                advance(len(rows))
        removed = sorted(set(known_hash) - set(ids))
        for start in range(0, len(removed), 5000):
            self._collection.delete(ids=removed[start : start + 5000])
        self._write_sidecar(ids, hashes, matrix, fingerprint)
        return BuildReport(fingerprint, skipped=False, embedded=len(todo), removed=len(removed), total=len(ids),
                           seconds=time.perf_counter() - started)

    def _known(self) -> tuple[dict[str, str], Any]:
        """Hashes and vectors already stored: from the manifest, else (after a crash) from chroma itself."""
        if self.manifest and self.vectors is not None:
            hashes = dict(zip(self.ids, self.manifest["hashes"], strict=True))
            return hashes, lambda item_id: self.vectors[self.row_of[item_id]]
        hashes, vectors = {}, {}
        total = self.count()
        for offset in range(0, total, 5000):
            page = self._collection.get(limit=5000, offset=offset, include=["metadatas", "embeddings"])
            for item_id, meta, vector in zip(page["ids"], page["metadatas"], page["embeddings"], strict=True):
                hashes[item_id] = (meta or {}).get("_h", "")
                vectors[item_id] = np.asarray(vector, dtype=np.float32)
        return hashes, vectors.__getitem__

    def _upsert(self, ids: list[str], matrix: np.ndarray, docs: list[str], metas: list[dict[str, Any]]) -> None:
        step = self._client.get_max_batch_size()
        for start in range(0, len(ids), step):
            end = start + step
            self._collection.upsert(ids=ids[start:end], embeddings=matrix[start:end], documents=docs[start:end],
                                    metadatas=metas[start:end])

    def _write_sidecar(self, ids: list[str], hashes: list[str], matrix: np.ndarray, fingerprint: str) -> None:
        self.vectors = None  # release the old memory map before replacing the file
        tmp = self.folder / "vectors.tmp.npy"
        np.save(tmp, matrix)
        tmp.replace(self.folder / "vectors.npy")
        manifest = {"format": FORMAT_VERSION, "fingerprint": fingerprint, "embedder": self.embedder.name,
                    "dimension": self.embedder.dimension, "collection": self.collection_name,
                    "ids": ids, "hashes": hashes}
        tmp = self.folder / "manifest.tmp.json"
        tmp.write_text(json.dumps(manifest), encoding="utf-8")
        tmp.replace(self.folder / "manifest.json")
        self._load_sidecar()

    # -- searching -----------------------------------------------------------------------------------

    def embed_query(self, text: str) -> np.ndarray:
        return self.embedder.embed([text])[0]

    def search(
        self,
        query: str | np.ndarray,
        *,
        k: int = 20,
        allowed: np.ndarray | None = None,
        exclude_ids: Iterable[str] = (),
        where: dict[str, Any] | None = None,
        exact: bool = False,
    ) -> list[VectorHit]:
        """Nearest items by cosine similarity.

        Without a filter this asks chroma's HNSW index. With `allowed` (a boolean mask over `ids`) that
        keeps at least HNSW_FILTER_MIN_SHARE of the items, HNSW is asked for more results and they are
        post-filtered; a narrower filter (or `exact`) scores exactly the allowed rows of the memory-mapped
        matrix. chromadb's own metadata filters (`where`, still accepted) took 30-900 ms per query at 20k
        items on this machine.
        """
        if self.vectors is None:
            raise VectorStoreError(f"vector store {self.folder} is empty; call ensure(catalog) first")
        vector = self.embed_query(query) if isinstance(query, str) else np.asarray(query, dtype=np.float32)
        exclude = {i for i in exclude_ids if i in self.row_of}
        if exact:
            return self._exact(vector, k, allowed, exclude)
        if allowed is not None:
            share = float(np.count_nonzero(allowed)) / max(len(allowed), 1)
            if share < HNSW_FILTER_MIN_SHARE:
                return self._exact(vector, k, allowed, exclude)
            hits = self._hnsw(vector, int(np.ceil((k + len(exclude)) / share * HNSW_OVERFETCH)), where)
            kept = [h for h in hits if allowed[self.row_of[h.id]] and h.id not in exclude][:k]
            if len(kept) == k or len(hits) == len(self.ids):
                return kept
            return self._exact(vector, k, allowed, exclude)
        hits = self._hnsw(vector, k + len(exclude), where)
        return [h for h in hits if h.id not in exclude][:k]

    def _hnsw(self, vector: np.ndarray, n: int, where: dict[str, Any] | None) -> list[VectorHit]:
        n = min(len(self.ids), n)
        if n == 0:
            return []
        found = self._collection.query(query_embeddings=[vector], n_results=n, where=where, include=["distances"])
        return [VectorHit(i, 1.0 - float(d)) for i, d in zip(found["ids"][0], found["distances"][0], strict=True)]

    def _exact(self, vector: np.ndarray, k: int, allowed: np.ndarray | None, exclude: set[str]) -> list[VectorHit]:
        return exact_search(self.vectors, self.ids, vector, k=k, allowed=allowed,
                            exclude_rows=[self.row_of[i] for i in exclude])

    def similarities(self, vector: np.ndarray, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """Cosine similarity of the query to the given rows (vectors are unit length)."""
        return similarities(self.vectors, vector, rows)

    def close(self) -> None:
        """Release the write lock (the chroma client is closed with the process)."""
        self.vectors = None
        if self._lock is not None and self._lock.is_locked:
            self._lock.release()

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
