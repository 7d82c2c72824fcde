"""Build or reopen every index of a catalog under the data directory, keyed by the catalog fingerprint.

    <data_dir>/indexes/<catalog name>/keywords-<fingerprint>/      bm25-<sha>/ (bm25s arrays) + concierge.json
    <data_dir>/indexes/<catalog name>/vectors-<embedder>/          chroma/, vectors-<sha>.npy, manifest.json
    <data_dir>/indexes/<catalog name>/ranker-<fingerprint>.json    manifest of ranker-<fingerprint>-<sha>.npz

Each is published by retrieval/publish.py: versioned data files named, with their checksums, by a
manifest replaced in one rename and checked on open; a damaged or half-written index is rebuilt here.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.catalog import Catalog
from retrieval.embeddings import Embedder
from retrieval.hybrid import FusionConfig, HybridSearcher
from retrieval.keywords import KeywordIndex, KeywordIndexError
from retrieval.ranker import Ranker, RankerConfig, RankerError
from retrieval.vector import ProgressFactory, VectorStore

_SLUG = re.compile(r"[^a-zA-Z0-9._-]+")

# Chosen on the MovieLens validation users (reports/retrieval.md); a catalog without interactions has a
# flat prior, so the priors then change nothing.
DEFAULT_FUSION = FusionConfig()


def slug(name: str) -> str:
    return _SLUG.sub("-", name).strip("-.") or "catalog"


def catalog_folder(data_dir: Path, catalog: Catalog) -> Path:
    return Path(data_dir) / "indexes" / slug(catalog.name)


def ranker_path(data_dir: Path, catalog: Catalog, fingerprint: str | None = None) -> Path:
    return catalog_folder(data_dir, catalog) / f"ranker-{fingerprint or catalog.fingerprint()}.npz"


@dataclass
class Indexes:
    """Everything retrieval needs for one catalog, plus how long opening each part took."""

    catalog: Catalog
    keywords: KeywordIndex
    vectors: VectorStore
    searcher: HybridSearcher
    ranker: Ranker | None
    timings: dict[str, float] = field(default_factory=dict)
    embedded: int = 0

    def close(self) -> None:
        self.vectors.close()


def open_keywords(catalog: Catalog, data_dir: Path, *, fingerprint: str, writable: bool = True) -> KeywordIndex:
    """Load the keyword index saved for this fingerprint, or build (and save) it; a damaged one is rebuilt."""
    folder = catalog_folder(data_dir, catalog) / f"keywords-{fingerprint}"
    try:
        return KeywordIndex.load(folder)
    except KeywordIndexError:
        pass  # none yet, or refused (damaged, older format)
    index = KeywordIndex.build(catalog, fingerprint=fingerprint)
    if writable:
        for stale in folder.parent.glob("keywords-*"):
            if stale != folder:
                shutil.rmtree(stale, ignore_errors=True)
        index.save(folder)
    return index


def open_ranker(catalog: Catalog, data_dir: Path, *, fingerprint: str, train: bool = True,
                config: RankerConfig | None = None) -> Ranker | None:
    """The saved ranker for this fingerprint; trained and saved if missing (or refused as damaged) and the
    catalog has interactions."""
    path = ranker_path(data_dir, catalog, fingerprint)
    try:
        return Ranker.load(path, fingerprint=fingerprint)
    except RankerError:
        pass  # none yet, or refused (damaged, older format)
    if not train or not (catalog.interactions or catalog.splits.get("train")):
        return None
    ranker = Ranker.train(catalog, config=config)
    ranker.save(path)
    return ranker


def open_indexes(
    catalog: Catalog,
    *,
    data_dir: Path,
    embedder: Embedder,
    writable: bool = True,
    train_ranker: bool = True,
    progress: ProgressFactory | None = None,
    fusion: FusionConfig | None = None,
    lock_timeout: float = 3.0,
) -> Indexes:
    """Open (building what is missing or stale) the keyword, vector and ranker indexes of a catalog.

    Reopening an unchanged catalog embeds nothing; a changed catalog re-embeds only changed items.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    fingerprint = catalog.fingerprint()
    timings["fingerprint_s"] = time.perf_counter() - started
    mark = time.perf_counter()
    # Opened first: a writer then holds the vector store's lock while it writes the other indexes too.
    vectors = VectorStore(catalog_folder(data_dir, catalog) / f"vectors-{slug(embedder.name)}", embedder,
                          writable=writable, lock_timeout=lock_timeout)
    timings["vectors_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    keywords = open_keywords(catalog, data_dir, fingerprint=fingerprint, writable=writable)
    timings["keywords_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    report = vectors.ensure(catalog, progress=progress, fingerprint=fingerprint)
    timings["vectors_s"] += time.perf_counter() - mark
    mark = time.perf_counter()
    ranker = open_ranker(catalog, data_dir, fingerprint=fingerprint, train=train_ranker and writable)
    timings["ranker_s"] = time.perf_counter() - mark
    searcher = HybridSearcher(catalog, keywords, vectors, fusion=fusion or DEFAULT_FUSION)
    timings["total_s"] = time.perf_counter() - started
    return Indexes(catalog=catalog, keywords=keywords, vectors=vectors, searcher=searcher, ranker=ranker,
                   timings=timings, embedded=report.embedded)
