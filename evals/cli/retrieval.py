"""`concierge eval retrieval`, `concierge bench retrieval` and `concierge train-ranker`: plain functions,
registered by the CLI module. Each loads the settings once, shows progress on stderr, writes a Markdown
report, and with --json prints one JSON object on stdout."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from evals.cli.common import REPO, SHARED_DATA, err
from evals.cli.common import fail as _fail


def eval_retrieval(
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    movielens: Annotated[Path, typer.Option(help="MovieLens ml-latest-small folder.")] = REPO / "data" / "movielens-latest-small",
    lastfm: Annotated[Path, typer.Option(help="UNICORN/SCPR LastFM folder.")] = SHARED_DATA / "lastfm-unicorn" / "lastfm",
    seed: Annotated[int, typer.Option(help="Seed of the validation/test user split.")] = 0,
    report: Annotated[Path, typer.Option(help="Where the Markdown report goes.")] = Path("reports/retrieval.md"),
) -> None:
    """Retrieval quality: MovieLens cold start (stated wants, and from history) and the LastFM ranker."""
    from conversation.settings import Settings
    from evals.retrieval_eval import run_retrieval_eval
    from evals.retrieval_report import write_retrieval_report
    from retrieval.catalog import CatalogError
    from retrieval.embeddings import EmbeddingError, SentenceTransformerEmbedder

    settings = Settings()
    try:
        embedder = SentenceTransformerEmbedder(settings.embedding_model_path)
        result = run_retrieval_eval(movielens=movielens, lastfm=lastfm, embedder=embedder,
                                    data_dir=settings.data_dir, seed=seed, progress=True)
    except (CatalogError, EmbeddingError, FileNotFoundError) as exc:
        _fail(str(exc))
    written = write_retrieval_report(result, report)
    if json:
        print(jsonlib.dumps({**result, "report": str(written)}))
        return
    table = Table("dataset", "method", "Recall", "NDCG@10", title="retrieval quality (test users)")
    for key, label in (("movielens", "MovieLens stated wants"), ("movielens_history", "MovieLens from history")):
        for method, row in result[key].items():
            table.add_row(label, method, f"{row['recall@20']:.4f} (@20)", f"{row['ndcg@10']:.4f}")
    for method, row in result["lastfm"].items():
        table.add_row("LastFM test", method, f"{row['recall@10']:.4f} (@10)", f"{row['ndcg@10']:.4f}")
    Console().print(table)
    err.print(f"report written to {written}")


def bench_retrieval(
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    sizes: Annotated[str, typer.Option(help="Comma-separated catalog sizes.")] = "10000,100000,1000000",
    queries: Annotated[int, typer.Option(min=20, help="Queries timed per size and mode.")] = 200,
    chroma_max: Annotated[int, typer.Option(help="Largest size built in chromadb; larger sizes use exact numpy search.")] = 100_000,
    chroma_budget: Annotated[float, typer.Option(help="Seconds spent measuring chromadb insert speed beyond chroma_max.")] = 600.0,
    movielens: Annotated[Path, typer.Option(help="Real catalog the synthetic items are made from.")] = REPO / "data" / "movielens-latest-small",
    report: Annotated[Path, typer.Option(help="Where the Markdown report goes.")] = Path("reports/retrieval-bench.md"),
    fresh: Annotated[bool, typer.Option(help="Re-run sizes that already have a result.")] = False,
    base_items: Annotated[int, typer.Option(min=0, help="Real items (most rated first) the synthetic ones reuse; 0: all.")] = 1000,
) -> None:
    """Retrieval speed: build time, query latency p50/p95 and peak memory at each size (resumable)."""
    from conversation.settings import Settings
    from evals.bench_retrieval import run_retrieval_bench, write_bench_report

    settings = Settings()
    try:
        size_list = [int(s.replace("_", "")) for s in sizes.split(",") if s.strip()]
    except ValueError:
        _fail(f"--sizes must be comma-separated integers, got {sizes!r}")
    if not size_list or min(size_list) < 100:
        _fail("--sizes needs at least one size of 100 items or more")
    result = run_retrieval_bench(size_list, catalog=movielens, data_dir=settings.data_dir, queries=queries,
                                 chroma_max=chroma_max, chroma_budget_s=chroma_budget, fresh=fresh,
                                 embedding_model_path=settings.embedding_model_path, base_items=base_items)
    written = write_bench_report(result, report)
    if json:
        print(jsonlib.dumps({**result, "report": str(written)}))
        return
    table = Table("items", "vector backend", "keyword p95", "vector p95", "hybrid p95", "peak RSS")
    for row in result["summary"]:
        table.add_row(f"{row['size']:,}", row["backend"], f"{row['keyword_p95_ms']:.1f} ms",
                      f"{row['vector_p95_ms']:.1f} ms", f"{row['hybrid_p95_ms']:.1f} ms", f"{row['peak_rss_mb']:.0f} MB")
    Console().print(table)
    err.print(f"report written to {written}")


def train_ranker(
    dataset: Annotated[Path, typer.Argument(help="A catalog with interactions (MovieLens, LastFM, custom).")],
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    l2: Annotated[float, typer.Option(min=0.0, help="EASE regularisation.")] = 200.0,
    neighbors: Annotated[int, typer.Option(min=0, help="Weights kept per item (0: all).")] = 200,
) -> None:
    """Train the classical ranker on a catalog's interactions and save it next to its indexes."""
    from conversation.settings import Settings
    from retrieval.catalog import CatalogError
    from retrieval.indexes import ranker_path
    from retrieval.loaders import load_catalog
    from retrieval.ranker import Ranker, RankerConfig, RankerError

    settings = Settings()
    try:
        catalog = load_catalog(dataset)
        ranker = Ranker.train(catalog, config=RankerConfig(l2=l2, neighbors=neighbors))
    except (CatalogError, RankerError) as exc:
        _fail(str(exc))
    path = ranker.save(ranker_path(settings.data_dir, catalog))
    info = {"catalog": catalog.name, "fingerprint": ranker.fingerprint, "path": str(path), **ranker.meta}
    if json:
        print(jsonlib.dumps(info))
        return
    err.print(f"ranker for {catalog.name} ({info['modelled_items']} items, {info['users']} users) saved to {path}")
