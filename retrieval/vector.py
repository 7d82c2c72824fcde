"""Vector index: a chromadb PersistentClient collection of item embeddings, built incrementally.

Layout of a store folder:
- `chroma/`: the chromadb persistent client (HNSW, cosine; documents and attribute metadata per item);
- `vectors-<sha>.npy`: the same vectors as a row matrix, memory-mapped for exact search inside a filter;
- `manifest.json`: catalog fingerprint, embedder, ids, per-item content hashes, and the vector file's
  name, size and sha256; replaced in one rename (retrieval/publish.py), checked before anything is served;
- `build.pending`: present while a build changes chroma, so a crashed build is repaired by the next one;
- `write.lock`: held by the one writer; a second writer gets `VectorStoreLocked` within the timeout.

The embedding function is always passed explicitly (chromadb's default one downloads a model and fails
offline). Reopening a store whose manifest matches the catalog embeds nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from retrieval.catalog import Catalog, Item
from retrieval.embeddings import Embedder
import retrieval.publish as publishing
from retrieval.exact import (  # noqa: F401 (MemoryVectorIndex: imported from here too)
    MAX_VALUES_PER_KIND,
    MemoryVectorIndex,
    ProgressFactory,
    VectorHit,
    exact_search,
    item_document,
    no_progress,
    similarities,
    single_thread_blas,
)
from retrieval.publish import IndexRefused, fsync_dir, read_manifest, verified, write_file

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
PENDING = "build.pending"
# A filter keeping at least this share of the catalog is served by HNSW with over-fetching and a
# post-filter; narrower filters score exactly the allowed rows (few rows, cheap).
HNSW_FILTER_MIN_SHARE = 0.1
HNSW_OVERFETCH = 1.5
_NAME_BAD = re.compile(r"[^a-zA-Z0-9._-]+")


class VectorStoreError(RuntimeError):
    """The vector store cannot do what was asked; the message says why and what to do."""


class VectorStoreLocked(VectorStoreError):
    """Another writer holds the store's lock."""


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
        elif not (self.folder / MANIFEST).is_file():
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
        """Serve only what the manifest names, after checking the vector file's size and sha256."""
        self.manifest: dict[str, Any] = {}
        self.vectors: np.ndarray | None = None
        self.refused: str | None = None
        for _attempt in range(3):  # a writer may publish (and remove our file) between two reads
            try:
                manifest = read_manifest(self.folder, MANIFEST)
                if manifest is None:
                    break
                if manifest.get("format") != FORMAT_VERSION or manifest.get("embedder") != self.embedder.name:
                    raise IndexRefused(f"{self.folder / MANIFEST} is for another format or embedder; rebuild it")
                matrix = np.load(verified(self.folder, manifest["files"]["vectors"]), mmap_mode="r")
                if matrix.shape != (len(manifest["ids"]), self.embedder.dimension):
                    raise IndexRefused(f"{self.folder}: the vector matrix does not fit the manifest; rebuild it")
            except (IndexRefused, FileNotFoundError) as exc:
                self.refused = str(exc)
                continue
            self.manifest, self.vectors, self.refused = manifest, matrix, None
            break
        self.ids: list[str] = list(self.manifest.get("ids", []))
        self.row_of = {item_id: row for row, item_id in enumerate(self.ids)}

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
        if self.writable and (self.folder / PENDING).exists():
            return False  # we hold the lock, so the writer that left this marker crashed mid-build
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
        stored, known_hash, known_vector = self._known()
        self._mark_pending()
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
                self._upsert(rows, ids, matrix, docs, metas, hashes)
                advance(len(rows))
        # Chroma is upserted in place: rows a crashed build left in it for another catalog are put back.
        embedded = set(todo)
        self._upsert([r for r, i in enumerate(ids) if r not in embedded and stored.get(i) != hashes[r]],
                     ids, matrix, docs, metas, hashes)
        removed = sorted(set(stored) - set(ids))
        for start in range(0, len(removed), 5000):
            self._collection.delete(ids=removed[start : start + 5000])
            publishing.step("chroma: deleted")
        self._write_sidecar(ids, hashes, matrix, fingerprint)
        (self.folder / PENDING).unlink(missing_ok=True)
        publishing.step("pending: cleared")
        return BuildReport(fingerprint, skipped=False, embedded=len(todo), removed=len(removed), total=len(ids),
                           seconds=time.perf_counter() - started)

    def _mark_pending(self) -> None:
        """Say that chroma is about to change, so a crash before the next publish is noticed."""
        (self.folder / PENDING).touch()
        fsync_dir(self.folder)
        publishing.step("pending: marked")

    def _known(self) -> tuple[dict[str, str], dict[str, str], Callable[[str], np.ndarray]]:
        """Chroma's content hash per id, and the hashes and vectors that can be reused without embedding.

        Reused vectors come from the verified manifest's matrix; without one (first build, refused
        index), from chroma records, each of which holds an id, its vector and its content hash together.
        """
        with_vectors = not (self.manifest and self.vectors is not None)
        stored, vectors = {}, {}
        include = ["metadatas", "embeddings"] if with_vectors else ["metadatas"]
        for offset in range(0, self.count(), 5000):
            page = self._collection.get(limit=5000, offset=offset, include=include)
            for n, (item_id, meta) in enumerate(zip(page["ids"], page["metadatas"], strict=True)):
                stored[item_id] = (meta or {}).get("_h", "")
                if with_vectors:
                    vectors[item_id] = np.asarray(page["embeddings"][n], dtype=np.float32)
        if not with_vectors:
            hashes = dict(zip(self.ids, self.manifest["hashes"], strict=True))
            return stored, hashes, lambda item_id: self.vectors[self.row_of[item_id]]
        usable = {i: h for i, h in stored.items() if vectors[i].shape == (self.embedder.dimension,)}
        return stored, usable, vectors.__getitem__

    def _upsert(self, rows: list[int], ids: list[str], matrix: np.ndarray, docs: list[str],
                metas: list[dict[str, Any]], hashes: list[str]) -> None:
        step_size = self._client.get_max_batch_size()
        for start in range(0, len(rows), step_size):
            part = rows[start : start + step_size]
            self._collection.upsert(ids=[ids[r] for r in part], embeddings=matrix[part],
                                    documents=[docs[r] for r in part],
                                    metadatas=[{**metas[r], "_h": hashes[r]} for r in part])
            publishing.step("chroma: upserted")

    def _write_sidecar(self, ids: list[str], hashes: list[str], matrix: np.ndarray, fingerprint: str) -> None:
        entry = write_file(self.folder, "vectors", ".npy", lambda tmp: np.save(tmp, matrix))
        manifest = {"format": FORMAT_VERSION, "fingerprint": fingerprint, "embedder": self.embedder.name,
                    "dimension": self.embedder.dimension, "collection": self.collection_name,
                    "ids": ids, "hashes": hashes, "files": {"vectors": entry}}
        publishing.publish(self.folder, MANIFEST, manifest)
        (self.folder / "vectors.npy").unlink(missing_ok=True)  # the unversioned file of format 1
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
        found = self._collection.query(query_embeddings=[vector], n_results=n, where=where, include=[])
        # The manifest, not chroma, says what is served: chroma may hold rows of a build that did not finish,
        # so hits are kept only if the manifest names them, and scored with its verified matrix.
        rows = np.asarray([self.row_of[i] for i in found["ids"][0] if i in self.row_of], dtype=np.int64)
        sims = similarities(self.vectors, vector, rows)
        order = np.lexsort((rows, -sims))
        return [VectorHit(self.ids[int(rows[o])], float(sims[o])) for o in order]

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
