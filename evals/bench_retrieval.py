"""`concierge bench retrieval`: index build time, query latency (keyword, vector, hybrid) and peak memory
at growing catalog sizes, plus embedding throughput measured on its own.

Large catalogs are synthetic but made of real material: every item recombines a real MovieLens movie
(title, genres, tags) with real tags of other movies, and its vector is that movie's real MiniLM vector
plus Gaussian noise (re-normalised). Each size runs in its own process so its peak memory is its own.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from evals.progress import progress_bar
from retrieval.catalog import Catalog, Item
from retrieval.embeddings import Embedder
from retrieval.hybrid import FusionConfig, HybridSearcher
from retrieval.keywords import KeywordIndex
from retrieval.vector import MemoryVectorIndex, VectorStore, item_document

COMMAND = "concierge bench retrieval"
NOISE = 0.02  # per-dimension std of the noise added to a real unit vector (cosine to the original ~0.93)


def peak_rss_mb() -> float:
    """This process's own peak resident memory (MB).

    VmHWM belongs to the process's address space, which exec replaces; ru_maxrss is carried across
    exec on Linux, so in a child started by the parent it would report the parent's peak instead.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def base_subset(catalog: Catalog, n: int) -> Catalog:
    """The `n` most popular real items (all of them when n <= 0): the material synthetic items reuse."""
    if n <= 0 or n >= len(catalog):
        return catalog
    keep = sorted(catalog.items, key=lambda i: (-catalog.popularity.get(i, 0), i))[:n]
    return Catalog(name=f"{catalog.name}-top{n}", items=[catalog.items[i] for i in keep])


def base_material(data_dir: Path, catalog: Catalog, embedder: Embedder, *, progress: bool) -> tuple[Catalog, np.ndarray]:
    """The real catalog and its real vectors (from the vector store under data_dir, built if missing)."""
    folder = data_dir / "indexes" / f"bench-base-{catalog.name}" / f"vectors-{embedder.name}"
    with VectorStore(folder, embedder) as store:
        store.ensure(catalog, progress=progress_bar if progress else None)
        vectors = np.asarray(store.vectors, dtype=np.float32)
        order = [store.row_of[i] for i in catalog.items]
    return catalog, vectors[order]


def synthetic_catalog(base: Catalog, size: int, *, seed: int = 0) -> tuple[Catalog, np.ndarray]:
    """`size` items recombining real ones; returns the catalog and each item's source row in `base`."""
    rng = np.random.default_rng(seed)
    sources = list(base.items.values())
    tag_pool = sorted({t for it in sources for t in it.attributes.get("tag", [])})
    picks = rng.integers(0, len(sources), size=size)
    extra = rng.integers(0, len(tag_pool), size=(size, 2))
    items = []
    for n in range(size):
        src = sources[picks[n]]
        tags = list(dict.fromkeys([*src.attributes.get("tag", [])[:8], tag_pool[extra[n, 0]], tag_pool[extra[n, 1]]]))
        genres = src.attributes.get("genre", [])
        attributes = {"genre": genres, "tag": tags} if genres else {"tag": tags}
        title = src.title if n < len(sources) else f"{src.title} [{n}]"
        text = f"{title} is a {', '.join(g.lower() for g in genres) or 'film'}, tagged {', '.join(tags)}."
        items.append(Item(id=f"s{n}", title=title, text=text, attributes=attributes))
    return Catalog(name=f"bench-{size}", items=items), picks


def perturbed_vectors(base_vectors: np.ndarray, picks: np.ndarray, *, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
    """Each pick's real vector plus N(0, NOISE^2) per dimension, re-normalised to unit length."""
    rng = np.random.default_rng(seed + 1)
    out = np.empty((len(picks), base_vectors.shape[1]), dtype=np.float32)
    for start in range(0, len(picks), chunk):
        block = base_vectors[picks[start : start + chunk]] + rng.normal(0, NOISE, (len(picks[start : start + chunk]), base_vectors.shape[1])).astype(np.float32)
        out[start : start + chunk] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def bench_queries(base: Catalog, n: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """Real-vocabulary queries: 1-3 real tags or genres; every third one also with a genre filter."""
    rng = np.random.default_rng(seed + 2)
    tags = sorted({t for it in base.items.values() for t in it.attributes.get("tag", [])})
    genres = sorted(base.attribute_counts.get("genre", {}))
    queries = []
    for q in range(n):
        words = [tags[i] for i in rng.integers(0, len(tags), size=int(rng.integers(1, 3)))]
        words.append(genres[int(rng.integers(0, len(genres)))])
        queries.append({"query": ", ".join(words), "must_have": [genres[int(rng.integers(0, len(genres)))]] if q % 3 == 2 else []})
    return queries


def _percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean()), "n": len(samples)}


def _time_queries(searcher: HybridSearcher, queries: list[dict[str, Any]], mode: str,
                  query_vectors: dict[str, np.ndarray]) -> dict[str, Any]:
    """Latency of `searcher.search` (k=20) per query, query embeddings precomputed (reported apart)."""
    wall: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    for q in queries[:5]:
        searcher.search(q["query"], k=20, mode=mode, query_vector=query_vectors[q["query"]])  # warm-up
    for q in queries:
        started, cpu_started = time.perf_counter(), time.process_time()
        searcher.search(q["query"], k=20, mode=mode, must_have=q["must_have"], query_vector=query_vectors[q["query"]])
        wall[bool(q["must_have"])].append(time.perf_counter() - started)
        cpu[bool(q["must_have"])].append(time.process_time() - cpu_started)
    # Wall-clock includes time the process waited for a core on a shared machine; CPU time does not
    # (but counts every thread of the process, chromadb's included).
    return {"unfiltered": _percentiles(wall[False]), "filtered": _percentiles(wall[True]),
            "unfiltered_cpu": _percentiles(cpu[False]), "filtered_cpu": _percentiles(cpu[True])}


def bench_size(size: int, *, base: Catalog, base_vectors: np.ndarray, embedder: Embedder, work_dir: Path,
               n_queries: int, use_chroma: bool, seed: int = 0) -> dict[str, Any]:
    """Build and query one catalog size; runs inside its own process."""
    out: dict[str, Any] = {"size": size, "vector_backend": "chroma-hnsw" if use_chroma else "exact-numpy"}
    mark = time.perf_counter()
    catalog, picks = synthetic_catalog(base, size, seed=seed)
    vectors = perturbed_vectors(base_vectors, picks, seed=seed)
    out["generate_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    fingerprint = catalog.fingerprint()
    out["fingerprint_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    keywords = KeywordIndex.build(catalog, fingerprint=fingerprint)
    out["keyword_build_s"] = time.perf_counter() - mark
    keywords.save(work_dir / "keywords")
    queries = bench_queries(base, n_queries, seed=seed)
    mark = time.perf_counter()
    query_vectors = dict(zip([q["query"] for q in queries], embedder.embed([q["query"] for q in queries]), strict=True))
    out["query_embedding_ms_each"] = (time.perf_counter() - mark) / len(queries) * 1000
    if use_chroma:
        store = VectorStore(work_dir / "vectors", embedder)
        mark = time.perf_counter()
        store.ensure(catalog, vectors=vectors, batch_size=5000, fingerprint=fingerprint)
        out["vector_build_s"] = time.perf_counter() - mark
        vector_index: Any = store
    else:
        vector_index = MemoryVectorIndex(list(catalog.items), vectors, embedder)
        out["vector_build_s"] = 0.0
    searcher = HybridSearcher(catalog, keywords, vector_index, fusion=FusionConfig())
    out["latency"] = {mode: _time_queries(searcher, queries, mode, query_vectors) for mode in ("keyword", "vector", "hybrid")}
    if use_chroma:
        store.close()
        mark = time.perf_counter()
        reopened_kw = KeywordIndex.load(work_dir / "keywords")
        with VectorStore(work_dir / "vectors", embedder) as again:
            report = again.ensure(catalog, fingerprint=fingerprint)
        out["reopen"] = {"seconds": time.perf_counter() - mark, "embedded": report.embedded, "skipped": report.skipped,
                         "keyword_items": len(reopened_kw)}
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def chroma_insert_rate(base_vectors: np.ndarray, embedder: Embedder, work_dir: Path, *, budget_s: float,
                       batch: int = 5000, seed: int = 0) -> dict[str, Any]:
    """How fast chromadb's local HNSW build goes: add perturbed real vectors until the time budget ends."""
    import chromadb

    from retrieval.vector import chroma_settings

    client = chromadb.PersistentClient(path=str(work_dir / "chroma-rate"), settings=chroma_settings())
    collection = client.get_or_create_collection("rate", embedding_function=None,
                                                 configuration={"hnsw": {"space": "cosine", "batch_size": 1000, "sync_threshold": 10_000}})
    rng = np.random.default_rng(seed)
    added, rates, started = 0, [], time.perf_counter()
    while time.perf_counter() - started < budget_s:
        picks = rng.integers(0, len(base_vectors), size=batch)
        vectors = perturbed_vectors(base_vectors, picks, seed=seed + added)
        mark = time.perf_counter()
        collection.add(ids=[f"r{added + n}" for n in range(batch)], embeddings=vectors)
        rates.append(batch / (time.perf_counter() - mark))
        added += batch
    return {"added": added, "seconds": time.perf_counter() - started, "first_batch_per_s": rates[0],
            "last_batch_per_s": rates[-1], "mean_per_s": added / (time.perf_counter() - started)}


def embedding_throughput(embedder: Embedder, base: Catalog, *, n: int = 256) -> dict[str, Any]:
    """Documents per second for real item documents (batch 64), and single short-query latency."""
    docs = [item_document(it) for it in list(base.items.values())[:n]]
    embedder.embed(docs[:8])
    mark = time.perf_counter()
    embedder.embed(docs, batch_size=64)
    docs_per_s = len(docs) / (time.perf_counter() - mark)
    samples = []
    for q in bench_queries(base, 30):
        mark = time.perf_counter()
        embedder.embed([q["query"]])
        samples.append(time.perf_counter() - mark)
    return {"documents": len(docs), "docs_per_s": docs_per_s, "query": _percentiles(samples)}


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")), cpu)
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average_1_5_15": [round(x, 2) for x in load],
            "python": platform.python_version(), "memory_total_gb": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1e9, 1)}


def run_size_subprocess(size: int, *, out_file: Path, args: list[str]) -> dict[str, Any]:
    """Run one size in a fresh interpreter (so peak RSS is per size); returns its JSON result."""
    command = [sys.executable, "-m", "evals.bench_retrieval", "--size", str(size), "--out", str(out_file), *args]
    subprocess.run(command, check=True)
    return json.loads(out_file.read_text(encoding="utf-8"))


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for size in result["sizes"]:
        lat = size["latency"]
        rows.append({"size": size["size"], "backend": size["vector_backend"],
                     **{f"{m}_p95_ms": lat[m]["unfiltered"]["p95_ms"] for m in lat},
                     "peak_rss_mb": size["peak_rss_mb"]})
    return rows


def _main() -> None:
    """Entry point of the per-size child process (`python -m evals.bench_retrieval --size N --out F`)."""
    import argparse

    from retrieval.embeddings import SentenceTransformerEmbedder
    from retrieval.loaders import load_catalog

    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--chroma-max", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-items", type=int, default=0)
    ns = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    base, base_vectors = base_material(ns.data_dir, base_subset(load_catalog(ns.catalog), ns.base_items), embedder,
                                       progress=False)
    work = ns.work_dir / f"size-{ns.size}"
    work.mkdir(parents=True, exist_ok=True)
    result = bench_size(ns.size, base=base, base_vectors=base_vectors, embedder=embedder, work_dir=work,
                        n_queries=ns.queries, use_chroma=ns.size <= ns.chroma_max, seed=ns.seed)
    result["machine_at_end"] = machine()
    result["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ns.out.write_text(json.dumps(result, indent=2), encoding="utf-8")




def run_retrieval_bench(sizes: list[int], *, catalog: Path, data_dir: Path, queries: int = 200,
                        chroma_max: int = 100_000, chroma_budget_s: float = 600.0, fresh: bool = False,
                        embedding_model_path: Path | None = None, seed: int = 0,
                        base_items: int = 2000) -> dict[str, Any]:
    """Embedding throughput, chromadb insert rate, then one child process per size (results kept, so a
    rerun resumes where it stopped unless `fresh`)."""
    from retrieval.embeddings import SentenceTransformerEmbedder
    from retrieval.loaders import load_catalog


    out_dir = Path(data_dir) / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result: dict[str, Any] = {"command": COMMAND, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "machine_at_start": machine(), "noise_std": NOISE, "queries": queries,
                              "base_items": base_items,
                              "chroma_max": chroma_max}
    with progress_bar(len(sizes) + 2, "retrieval bench") as advance:
        embedder = SentenceTransformerEmbedder(embedding_model_path)
        base, base_vectors = base_material(Path(data_dir), base_subset(load_catalog(catalog), base_items), embedder,
                                           progress=True)
        result["embedding"] = embedding_throughput(embedder, base)
        result["embedder"] = embedder.name
        advance(1)
        if any(size > chroma_max for size in sizes):
            rate_dir = out_dir / "chroma-rate"
            if rate_dir.exists():
                import shutil

                shutil.rmtree(rate_dir)
            rate_dir.mkdir(parents=True)
            result["chroma_insert"] = chroma_insert_rate(base_vectors, embedder, rate_dir, budget_s=chroma_budget_s)
        advance(1)
        args = ["--catalog", str(catalog), "--data-dir", str(data_dir), "--work-dir", str(out_dir),
                "--queries", str(queries), "--chroma-max", str(chroma_max), "--seed", str(seed),
                "--base-items", str(base_items)]
        result["sizes"] = []
        for size in sizes:
            out_file = out_dir / f"size-{size}.json"
            if fresh or not out_file.is_file():
                run_size_subprocess(size, out_file=out_file, args=args)
            result["sizes"].append(json.loads(out_file.read_text(encoding="utf-8")))
            advance(1)
    result["summary"] = summary_rows(result)
    result["machine_at_end"] = machine()
    result["seconds"] = time.perf_counter() - started
    return result


def write_bench_report(result: dict[str, Any], path: Path) -> Path:
    """The benchmark as Markdown: method, per-size tables, embedding and chromadb insert speed."""
    emb = result["embedding"]
    lines = [
        "# Retrieval benchmark",
        "",
        f"Run {result['date']} with `{result['command']}` on {result['machine_at_start']['cpu']}, "
        f"{result['machine_at_start']['cores']} cores, {result['machine_at_start']['memory_total_gb']} GB. "
        f"Load average at start {result['machine_at_start']['load_average_1_5_15']}, at end "
        f"{result['machine_at_end']['load_average_1_5_15']} (the machine was shared with other jobs: wall-clock "
        "latencies include time spent waiting for a core; CPU-time latencies do not).",
        "",
        "## How the catalogs are made",
        "",
        f"Every size is synthetic but built from real material ({result.get('base_items') or 'all'} most-rated "
        "MovieLens movies, each embedded for real): item *n* takes one of those movies (title, "
        "genres, up to 8 of its real tags) plus two real tags drawn from other movies, and its vector is that "
        f"movie's real {result['embedder']} vector plus Gaussian noise (std {result['noise_std']} per dimension, "
        "cosine ~0.93 to the original), re-normalised. Nothing at these sizes is embedded, so embedding speed is "
        "reported on its own below. Queries are 1-3 real tags plus a real genre; every third query also has a "
        f"genre filter (`must_have`). {result['queries']} queries per size and mode, k=20, after 5 warm-up queries; "
        "query embeddings are computed beforehand (their cost is in the embedding section). Each size runs in "
        "its own process, so peak RSS is that size's own.",
        "",
        "## Results",
        "",
        "| items | vector backend | keyword build s | vector build s | reopen s (embedded) | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for size in result["sizes"]:
        reopen = size.get("reopen")
        reopen_text = f"{reopen['seconds']:.1f} ({reopen['embedded']})" if reopen else "n/a"
        lines.append(f"| {size['size']:,} | {size['vector_backend']} | {size['keyword_build_s']:.1f} | "
                     f"{size['vector_build_s']:.1f} | {reopen_text} | {size['peak_rss_mb']:.0f} |")
    lines += _latency_table(result["sizes"])
    lines += ["", "## Embedding throughput (real documents, measured separately)", "",
              f"- {emb['docs_per_s']:.1f} item documents/s ({emb['documents']} MovieLens documents, batch 64).",
              f"- one short query: p50 {emb['query']['p50_ms']:.1f} ms, p95 {emb['query']['p95_ms']:.1f} ms "
              "(add this to the vector and hybrid latencies above for end-to-end time).", ""]
    rate = result.get("chroma_insert")
    if rate:
        hours = 1_000_000 / max(rate["mean_per_s"], 1e-9) / 3600
        lines += ["## chromadb build speed beyond the chroma sizes", "",
                  f"Sizes above {result['chroma_max']:,} items were not built in chromadb: adding perturbed real "
                  f"vectors (no documents, no metadata) to a fresh local collection for {rate['seconds']:.0f} s "
                  f"added {rate['added']:,} items, {rate['mean_per_s']:.0f} items/s on average (first batch "
                  f"{rate['first_batch_per_s']:.0f}/s, last {rate['last_batch_per_s']:.0f}/s); at that rate 1M items "
                  f"take about {hours:.1f} h. Those sizes search vectors exactly (numpy over the full matrix) "
                  "instead; the keyword side and the fusion are the same code as below the limit.", ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _latency_table(sizes: list[dict[str, Any]]) -> list[str]:
    """Query latency per size and mode, p50 / p95 wall clock with CPU time in brackets."""
    lines = ["", "Query latency in ms, p50 / p95 (wall clock; CPU time in brackets):", "",
             "| items | mode | unfiltered | with a genre filter |", "|---|---|---|---|"]
    for size in sizes:
        for mode, lat in size["latency"].items():
            cells = []
            for kind in ("unfiltered", "filtered"):
                wall, cpu = lat[kind], lat[f"{kind}_cpu"]
                cells.append(f"{wall['p50_ms']:.1f} / {wall['p95_ms']:.1f} ({cpu['p50_ms']:.1f} / {cpu['p95_ms']:.1f})")
            lines.append(f"| {size['size']:,} | {mode} | {cells[0]} | {cells[1]} |")
    return lines


if __name__ == "__main__":
    _main()
