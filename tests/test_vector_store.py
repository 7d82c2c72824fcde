"""The chromadb vector store: idempotent incremental builds, reopening without re-embedding, filters,
and the single-writer lock. Unit tests use the hashing embedder; `embeddings` tests use MiniLM."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np
import pytest

from retrieval.catalog import Catalog, Item
from retrieval.embeddings import HashingEmbedder
from retrieval.vector import VectorStore, VectorStoreError, VectorStoreLocked, item_document
from tests.helpers import tiny_movies


class CountingEmbedder(HashingEmbedder):
    """The hashing fake, counting how many texts it embedded."""

    def __init__(self) -> None:
        super().__init__(64)
        self.texts = 0

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        self.texts += len(texts)
        return super().embed(texts, batch_size=batch_size)


def with_items(catalog: Catalog, items: list[Item]) -> Catalog:
    return Catalog(name=catalog.name, items=items, interactions=catalog.interactions)


def test_build_is_idempotent_and_reopen_does_not_embed(tmp_path):
    catalog, embedder = tiny_movies(), CountingEmbedder()
    with VectorStore(tmp_path / "v", embedder) as store:
        first = store.ensure(catalog)
        assert (first.embedded, first.skipped, store.count()) == (8, False, 8)
        again = store.ensure(catalog)
        assert again.skipped and embedder.texts == 8
    reopened_embedder = CountingEmbedder()
    with VectorStore(tmp_path / "v", reopened_embedder) as store:
        assert store.is_current(catalog)
        assert store.ensure(catalog).skipped
        assert reopened_embedder.texts == 0
        assert store.search("creepy horror", k=2)[0].id in {"4", "7"}
        # Only the query was embedded.
        assert reopened_embedder.texts == 1


def test_incremental_build_embeds_only_changed_items_and_drops_removed(tmp_path):
    catalog, embedder = tiny_movies(), CountingEmbedder()
    with VectorStore(tmp_path / "v", embedder) as store:
        store.ensure(catalog)
        items = [it for it in catalog.items.values() if it.id != "8"]
        items[0] = items[0].model_copy(update={"text": "Toy Story (1995). Animation about toys that talk"})
        report = store.ensure(with_items(catalog, items))
        assert (report.embedded, report.removed, report.total) == (1, 1, 7)
        assert embedder.texts == 9
        assert store.count() == 7
        assert "8" not in {h.id for h in store.search("paris quirky romance", k=7)}


def test_exact_search_honours_mask_and_exclusions(tmp_path):
    catalog = tiny_movies()
    with VectorStore(tmp_path / "v", HashingEmbedder(64)) as store:
        store.ensure(catalog)
        allowed = np.zeros(len(store.ids), dtype=bool)
        allowed[[store.row_of["4"], store.row_of["7"]]] = True
        assert {h.id for h in store.search("funny animation", k=5, allowed=allowed)} == {"4", "7"}
        ann = store.search("funny animation", k=3, exclude_ids=["1", "2"])
        assert "1" not in {h.id for h in ann} and len(ann) == 3
        exact = store.search("funny animation", k=3, exact=True)
        assert [h.id for h in exact] == [h.id for h in store.search("funny animation", k=3)]


def test_chroma_collection_uses_our_embedding_function(tmp_path):
    with VectorStore(tmp_path / "v", HashingEmbedder(64)) as store:
        store.ensure(tiny_movies())
        function = store._collection._embedding_function
        assert function.name() == "concierge"
        # Querying by text through chroma itself goes through our embedder, never a download.
        found = store._collection.query(query_texts=["space creepy"], n_results=1)
        assert found["ids"][0] == [store.search("space creepy", k=1)[0].id]


def test_second_writer_in_process_gets_a_clear_error_fast(tmp_path):
    with VectorStore(tmp_path / "v", HashingEmbedder(64)):
        started = time.monotonic()
        with pytest.raises(VectorStoreLocked, match="open for writing"):
            VectorStore(tmp_path / "v", HashingEmbedder(64), lock_timeout=1.0)
        assert time.monotonic() - started < 5
    # Once closed, the next writer gets in.
    VectorStore(tmp_path / "v", HashingEmbedder(64), lock_timeout=1.0).close()


def test_second_writer_process_gets_a_clear_error_within_5s(tmp_path):
    (tmp_path / "v").mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(); "
         "print('held', flush=True); time.sleep(60)", str(tmp_path / "v" / "write.lock")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(VectorStoreLocked):
            VectorStore(tmp_path / "v", HashingEmbedder(64))
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()


def test_read_only_open_of_a_missing_store_fails_clearly(tmp_path):
    with pytest.raises(VectorStoreError, match="build it first"):
        VectorStore(tmp_path / "nothing", HashingEmbedder(64), writable=False)


def test_documents_carry_title_text_and_attributes():
    item = tiny_movies().items["7"]
    doc = item_document(item)
    assert doc.startswith("The Shining (1980)") and "tag: stephen king, creepy." in doc


@pytest.mark.embeddings
def test_real_minilm_store_reopens_without_re_embedding(tmp_path):
    from retrieval.embeddings import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    catalog = tiny_movies()
    with VectorStore(tmp_path / "v", embedder) as store:
        assert store.ensure(catalog).embedded == 8
        assert store.search("a scary film set in outer space", k=1)[0].id == "4"
    started = time.perf_counter()
    with VectorStore(tmp_path / "v", embedder) as store:
        report = store.ensure(catalog)
        reopen_s = time.perf_counter() - started
        assert report.skipped and report.embedded == 0
        assert store.search("a scary film set in outer space", k=1)[0].id == "4"
    assert reopen_s < 5


def test_broad_filter_uses_hnsw_post_filter_and_matches_exact_search(tmp_path):
    rng = np.random.default_rng(0)
    words = ["space", "war", "love", "paris", "robot", "heist", "ghost", "ocean", "king", "dog"]
    items = [Item(id=str(n), title=f"Film {n}", text=" ".join([*rng.choice(words, size=4), f"w{n}", f"v{n % 17}"]),
                  attributes={"genre": ["Drama" if n % 3 else "Comedy"]}) for n in range(300)]
    catalog = Catalog(name="grid", items=items)
    with VectorStore(tmp_path / "v", HashingEmbedder(64)) as store:
        store.ensure(catalog)
        broad = np.asarray([n % 3 != 0 for n in range(300)])  # two thirds: HNSW over-fetch + post-filter
        narrow = np.zeros(300, dtype=bool)
        narrow[:12] = True  # 4%: exact over the allowed rows
        calls = []
        query = store._collection.query
        store._collection.query = lambda **kw: calls.append(kw["n_results"]) or query(**kw)
        for allowed in (broad, narrow):
            got = store.search("space robot war", k=10, allowed=allowed, exclude_ids=["1"])
            want = store.search("space robot war", k=10, allowed=allowed, exclude_ids=["1"], exact=True)
            if allowed is narrow:
                assert [h.id for h in got] == [h.id for h in want]
            else:  # approximate: most of the exact top 10, best first
                assert len({h.id for h in got} & {h.id for h in want}) >= 8
                assert [h.score for h in got] == sorted((h.score for h in got), reverse=True)
            assert len(got) == 10 and all(allowed[store.row_of[h.id]] and h.id != "1" for h in got)
        assert len(calls) == 1 and calls[0] >= 10 / (2 / 3)  # only the broad filter asked HNSW, over-fetching
