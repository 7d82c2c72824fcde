"""Crash safety of the vector store: a crash at every step of publishing (simulated in process), and real
kill -9 of a process that rebuilds the index in a loop. After either, a reopened store serves the
complete old index, the complete new one, or refuses and is rebuilt: never a mix (issue 17)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import retrieval.publish as publishing
from retrieval.catalog import Catalog, Item
from retrieval.embeddings import HashingEmbedder
from retrieval.indexes import open_ranker, ranker_path
from retrieval.keywords import KeywordIndex, KeywordIndexError
from retrieval.publish import IndexRefused, read_manifest, verified
from retrieval.ranker import Ranker, RankerConfig, RankerError
from retrieval.vector import MANIFEST, MemoryVectorIndex, VectorStore, VectorStoreError
from tests.helpers import tiny_movies

WORDS = ["space", "war", "love", "paris", "robot", "heist", "ghost", "ocean", "king", "dog", "jazz", "train"]
QUERIES = ["space robot", "love in paris", "ghost ocean king", "jazz train heist", "dog war"]
ROOT = Path(__file__).resolve().parents[1]


class Crash(BaseException):
    """Stands for the process dying: no `except Exception` catches it."""


def grid(version: str) -> Catalog:
    """40 items; version "b" changes 6, drops 5 and adds 5, so a rebuild touches every kind of step."""
    rng = np.random.default_rng(7)
    rows = {n: " ".join([*rng.choice(WORDS, size=4), f"w{n}"]) for n in range(45)}
    ids = range(40) if version == "a" else [*range(5, 45)]
    items = []
    for n in ids:
        text = rows[n] if version == "a" or n % 7 else f"{rows[n]} {' '.join(rng.choice(WORDS, size=3))} changed"
        genre = "Drama" if n % 3 else "Comedy"
        items.append(Item(id=str(n), title=f"Film {n}", text=text, attributes={"genre": [genre]}))
    return Catalog(name="grid", items=items)


def expected(catalog: Catalog, embedder: HashingEmbedder) -> MemoryVectorIndex:
    return MemoryVectorIndex.build(catalog, embedder)


def check_served(store: VectorStore, catalog: Catalog) -> None:
    """The store serves exactly `catalog`: its ids, its vectors, and the right answers to searches."""
    truth = expected(catalog, store.embedder)
    assert store.ids == truth.ids
    # Rows reused from chroma records (after a crash with no published manifest) may differ in the last bit.
    np.testing.assert_allclose(np.asarray(store.vectors), truth.vectors, atol=1e-6)
    comedy = np.asarray([catalog.items[i].attributes["genre"] == ["Comedy"] for i in truth.ids])
    narrow = comedy & (np.cumsum(comedy) <= 3)  # under 10% of the rows: scored exactly
    for query in QUERIES:
        want = [h.id for h in truth.search(query, k=5)]
        assert [h.id for h in store.search(query, k=5, exact=True)] == want
        assert [h.id for h in store.search(query, k=3, allowed=narrow)] == [
            h.id for h in truth.search(query, k=3, allowed=narrow)]
        # HNSW (unfiltered, or a broad filter): approximate, but only ids and scores the manifest serves.
        hits = store.search(query, k=5) + store.search(query, k=5, allowed=comedy)
        assert {h.id for h in hits} <= set(truth.ids)
        assert all(comedy[truth.row_of[h.id]] for h in hits[5:])
        for hit in hits:
            assert hit.score == pytest.approx(float(truth.vectors[truth.row_of[hit.id]] @ truth.embed_query(query)),
                                              abs=1e-5)


def check_chroma(store: VectorStore, catalog: Catalog) -> None:
    """After a successful ensure, chroma holds the catalog's rows and nothing else."""
    truth = expected(catalog, store.embedder)
    page = store._collection.get(include=["embeddings"])
    assert sorted(page["ids"]) == sorted(truth.ids)
    for item_id, vector in zip(page["ids"], page["embeddings"], strict=True):
        np.testing.assert_allclose(vector, truth.vectors[truth.row_of[item_id]], atol=1e-5)


def crash_at(monkeypatch: pytest.MonkeyPatch, k: int | None) -> list[str]:
    """Make publishing raise `Crash` right after its k-th step (never if k is None); returns the steps seen."""
    seen: list[str] = []

    def hook(name: str) -> None:
        seen.append(name)
        if len(seen) == k:
            raise Crash(name)

    monkeypatch.setattr(publishing, "step", hook)
    return seen


@pytest.mark.parametrize(("old", "new", "target"), [("a", "b", "b"), ("a", "b", "a"), (None, "a", "a")])
def test_a_crash_after_any_step_leaves_the_old_index_or_a_refused_one(tmp_path, monkeypatch, old, new, target):
    """Build `old`, crash while building `new` after step k (every k), reopen, then ensure `target`."""
    embedder = HashingEmbedder(32)
    steps = crash_at(monkeypatch, None)
    with VectorStore(tmp_path / "probe", embedder) as store:
        if old:
            store.ensure(grid(old))
        steps.clear()
        store.ensure(grid(new))
    names = list(steps)
    assert {"vectors: renamed", "manifest: renamed", "chroma: upserted"} <= set(names)
    for k in range(1, len(names) + 1):
        folder = tmp_path / f"k{k}"
        crash_at(monkeypatch, None)
        if old:
            with VectorStore(folder, embedder) as store:
                store.ensure(grid(old))
        crash_at(monkeypatch, k)
        with pytest.raises(Crash), VectorStore(folder, embedder) as store:
            store.ensure(grid(new))
        crash_at(monkeypatch, None)
        served = None
        if (folder / MANIFEST).exists():
            with VectorStore(folder, embedder, writable=False) as reader:
                served = {grid("a").fingerprint(): "a", grid("b").fingerprint(): "b"}.get(reader.fingerprint)
                if reader.refused or served is None:
                    assert reader.vectors is None and not reader.is_current(grid(new))
                    with pytest.raises(VectorStoreError, match="empty"):
                        reader.search("space", k=3)
                else:
                    # Only a crash after the manifest's rename may serve the new version.
                    assert served == old or (served == new and k > names.index("manifest: renamed")), names[k - 1]
                    check_served(reader, grid(served))
        with VectorStore(folder, embedder) as store:
            report = store.ensure(grid(target))
            check_served(store, grid(target))
            check_chroma(store, grid(target))
            assert not (folder / "build.pending").exists()
            assert report.skipped == (served == target and k >= names.index("pending: cleared") + 1)
            assert sorted(p.name for p in folder.glob("vectors*")) == [store.manifest["files"]["vectors"]["name"]]


def test_a_damaged_or_missing_vector_file_is_refused_and_rebuilt(tmp_path):
    embedder, catalog = HashingEmbedder(32), grid("a")
    with VectorStore(tmp_path / "v", embedder) as store:
        store.ensure(catalog)
        name = store.manifest["files"]["vectors"]["name"]
    data = bytearray((tmp_path / "v" / name).read_bytes())
    data[-3] ^= 0xFF  # one flipped byte in the last row
    (tmp_path / "v" / name).write_bytes(bytes(data))
    with VectorStore(tmp_path / "v", embedder, writable=False) as reader:
        assert reader.refused and "checksum" in reader.refused and not reader.is_current(catalog)
    with VectorStore(tmp_path / "v", embedder) as store:
        assert not store.ensure(catalog).skipped
        check_served(store, catalog)
    (tmp_path / "v" / store.manifest["files"]["vectors"]["name"]).unlink()
    with VectorStore(tmp_path / "v", embedder) as store:
        assert store.refused and "missing" in store.refused
        store.ensure(catalog)
        check_served(store, catalog)


def test_the_issue_17_layout_is_refused(tmp_path):
    """Format 1 (vectors.npy + a manifest naming no file) is what a crash could leave mixed: never served."""
    embedder, catalog = HashingEmbedder(32), grid("a")
    with VectorStore(tmp_path / "v", embedder) as store:
        store.ensure(catalog)
    manifest = json.loads((tmp_path / "v" / MANIFEST).read_text())
    np.save(tmp_path / "v" / "vectors.npy", np.zeros((40, 32), np.float32))
    (tmp_path / "v" / MANIFEST).write_text(json.dumps({**manifest, "format": 1, "files": None}))
    with VectorStore(tmp_path / "v", embedder) as store:
        assert store.refused and store.vectors is None
        store.ensure(catalog)
        check_served(store, catalog)
        assert not (tmp_path / "v" / "vectors.npy").exists()


def test_a_crash_while_saving_a_ranker_keeps_the_old_one_or_refuses(tmp_path, monkeypatch):
    """The ranker's .npz and .json used to be written one after the other: a crash between left a pair
    that `load` could not read (and `open_indexes` did not retrain)."""
    catalog = tiny_movies()
    old, new = Ranker.train(catalog, config=RankerConfig(l2=1.0)), Ranker.train(catalog, config=RankerConfig(l2=50.0))
    steps = crash_at(monkeypatch, None)
    new.save(tmp_path / "probe" / "ranker.npz")
    for k in range(1, len(steps) + 1):
        folder = tmp_path / f"k{k}"
        crash_at(monkeypatch, None)
        old.save(folder / "ranker.npz")
        crash_at(monkeypatch, k)
        with pytest.raises(Crash):
            new.save(folder / "ranker.npz")
        crash_at(monkeypatch, None)
        loaded = Ranker.load(folder / "ranker.npz", fingerprint=catalog.fingerprint())
        want = new if k > steps.index("manifest: renamed") else old
        assert loaded.config == want.config
        assert (loaded.weights != want.weights).nnz == 0
    # A damaged data file is refused, and open_ranker trains a new one instead of failing.
    path = ranker_path(tmp_path / "data", catalog)
    old.save(path)
    npz = next(path.parent.glob("ranker-*.npz"))
    npz.write_bytes(npz.read_bytes()[:-10])
    with pytest.raises(RankerError, match="retrain"):
        Ranker.load(path)
    assert open_ranker(catalog, tmp_path / "data", fingerprint=catalog.fingerprint()).config == RankerConfig()


def test_a_crash_while_saving_a_keyword_index_keeps_the_old_one_or_refuses(tmp_path, monkeypatch):
    old, new = KeywordIndex.build(grid("a")), KeywordIndex.build(grid("b"))
    steps = crash_at(monkeypatch, None)
    new.save(tmp_path / "probe")
    for k in range(1, len(steps) + 1):
        folder = tmp_path / f"k{k}"
        crash_at(monkeypatch, None)
        old.save(folder)
        crash_at(monkeypatch, k)
        with pytest.raises(Crash):
            new.save(folder)
        crash_at(monkeypatch, None)
        loaded = KeywordIndex.load(folder)
        want = new if k > steps.index("manifest: renamed") else old
        assert loaded.ids == want.ids
        for query in QUERIES:
            assert [(h.id, round(h.score, 5)) for h in loaded.search(query)] == [
                (h.id, round(h.score, 5)) for h in want.search(query)]
    bm25 = folder / json.loads((folder / "concierge.json").read_text())["files"]["bm25"]["name"]
    next(bm25.glob("*.npy")).write_bytes(b"damaged")
    with pytest.raises(KeywordIndexError, match="checksum"):
        KeywordIndex.load(folder)
    new.save(folder)  # the same content again: the damaged copy of that version is replaced
    assert KeywordIndex.load(folder).ids == new.ids


# -- real kill -9 ------------------------------------------------------------------------------------


def worker(folder: str, first: str, loops: int) -> None:
    """Run in a subprocess: report what a reopen serves, repair, check, then rebuild a <-> b in a loop."""
    embedder = HashingEmbedder(32)
    catalogs = {v: grid(v) for v in "ab"}
    before = "none"
    if (Path(folder) / MANIFEST).exists():
        with VectorStore(Path(folder), embedder, writable=False) as reader:
            match = [v for v, c in catalogs.items() if c.fingerprint() == reader.fingerprint]
            before = "refused" if reader.refused else (match[0] if match else "other")
            if match and reader.is_current(catalogs[match[0]]):
                check_served(reader, catalogs[match[0]])
    with VectorStore(Path(folder), embedder, lock_timeout=10) as store:
        store.ensure(catalogs[first])
        check_served(store, catalogs[first])
        check_chroma(store, catalogs[first])
        print(json.dumps({"before": before, "ok": True}), flush=True)
        for n in range(loops):
            store.ensure(catalogs["ab"[(n + 1 + "ab".index(first)) % 2]])
            print(n, flush=True)


def run_worker(folder: Path, first: str, loops: int) -> subprocess.Popen:
    code = f"from tests.test_index_crash import worker; worker({str(folder)!r}, {first!r}, {loops})"
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def static_state(folder: Path) -> str:
    """Which catalog the manifest on disk names with a verified matrix ("a"/"b"), or "refused"/"none"."""
    try:
        manifest = read_manifest(folder, MANIFEST)
        if manifest is None:
            return "none"
        matrix = np.load(verified(folder, manifest["files"]["vectors"]))
    except IndexRefused:
        return "refused"
    version = {grid(v).fingerprint(): v for v in "ab"}[manifest["fingerprint"]]
    truth = expected(grid(version), HashingEmbedder(32))
    assert manifest["ids"] == truth.ids
    np.testing.assert_array_equal(matrix, truth.vectors)
    return version


def test_kill_9_while_publishing_never_leaves_a_mixed_index(tmp_path):
    rng = random.Random(17)
    folder = tmp_path / "v"
    states = []
    for round_ in range(4):
        proc = run_worker(folder, "ab"[round_ % 2], loops=10_000)
        try:
            first = json.loads(proc.stdout.readline())
            assert first["ok"], first
            states.append(first["before"])
            assert proc.stdout.readline().strip() == "0"  # the loop is publishing
            time.sleep(rng.uniform(0.0, 0.4))
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        states.append(static_state(folder))  # old-complete or new-complete (verified), never mixed
    proc = run_worker(folder, "a", loops=0)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and json.loads(out.splitlines()[0])["ok"]
    assert all(s in {"a", "b", "refused", "none"} for s in states), states
