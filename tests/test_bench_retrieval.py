"""`concierge bench retrieval` building blocks on a small size: synthetic catalogs from real material,
timings for every mode, reopening without re-embedding, and the report."""

from __future__ import annotations

import numpy as np
import pytest

from evals.bench_retrieval import bench_size, perturbed_vectors, summary_rows, synthetic_catalog, write_bench_report
from retrieval.embeddings import HashingEmbedder
from tests.helpers import tiny_movies


@pytest.fixture(scope="module")
def base():
    catalog = tiny_movies()
    embedder = HashingEmbedder()
    vectors = np.asarray(embedder.embed([it.text for it in catalog.items.values()]), dtype=np.float32)
    return catalog, vectors, embedder


def test_synthetic_catalog_recombines_real_items(base):
    catalog, vectors, _ = base
    synthetic, picks = synthetic_catalog(catalog, 50, seed=1)
    assert len(synthetic) == 50 and len(set(synthetic.items)) == 50
    real_tags = {t for it in catalog.items.values() for t in it.attributes["tag"]}
    for item in synthetic.items.values():
        assert set(item.attributes["tag"]) <= real_tags
    moved = perturbed_vectors(vectors, picks, seed=1)
    assert np.allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-5)
    cosine = (moved * vectors[picks] / np.linalg.norm(vectors[picks], axis=1, keepdims=True)).sum(axis=1)
    assert cosine.min() > 0.5  # still close to the real vector it came from


@pytest.mark.parametrize("use_chroma", [True, False])
def test_bench_size_times_every_mode(base, tmp_path, use_chroma):
    catalog, vectors, embedder = base
    out = bench_size(120, base=catalog, base_vectors=vectors, embedder=embedder, work_dir=tmp_path,
                     n_queries=20, use_chroma=use_chroma)
    assert out["vector_backend"] == ("chroma-hnsw" if use_chroma else "exact-numpy")
    for mode in ("keyword", "vector", "hybrid"):
        lat = out["latency"][mode]
        assert lat["unfiltered"]["n"] + lat["filtered"]["n"] == 20
        assert 0 < lat["unfiltered"]["p50_ms"] <= lat["unfiltered"]["p95_ms"]
    if use_chroma:
        assert out["reopen"]["embedded"] == 0 and out["reopen"]["keyword_items"] == 120
    assert out["peak_rss_mb"] > 0


def test_report_lists_each_size(base, tmp_path):
    catalog, vectors, embedder = base
    size = bench_size(60, base=catalog, base_vectors=vectors, embedder=embedder, work_dir=tmp_path,
                      n_queries=20, use_chroma=False)
    machine = {"cpu": "test cpu", "cores": 2, "memory_total_gb": 1.0, "load_average_1_5_15": [0, 0, 0]}
    result = {"command": "concierge bench retrieval", "date": "today", "machine_at_start": machine,
              "machine_at_end": machine, "noise_std": 0.02, "queries": 20, "chroma_max": 100, "embedder": "hash",
              "embedding": {"docs_per_s": 1.0, "documents": 8, "query": {"p50_ms": 1.0, "p95_ms": 2.0}},
              "sizes": [size]}
    result["summary"] = summary_rows(result)
    text = write_bench_report(result, tmp_path / "bench.md").read_text(encoding="utf-8")
    assert "| 60 | exact-numpy |" in text and "| 60 | hybrid |" in text
