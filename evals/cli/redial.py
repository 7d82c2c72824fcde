"""`concierge eval redial`: the ReDial benchmark (iEvaLM "Original") and the linker's accuracy on ReDial."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

DEFAULT_ROOT = Path("../shared/data")
MOVIELENS = Path("data/movielens-latest-small")
# The eval reads contexts without an LLM unless an ablation asks for one; it never phrases or re-ranks.
BASE = {"read_with_llm": False, "phrase_with_llm": False, "rerank_with_llm": False, "mode": "graph"}
ABLATIONS: dict[str, dict[str, Any]] = {
    "no-linking": {"link_entities": False},
    "no-collaborative": {"collaborative": False},
    "no-content": {"content_similarity": False},
    "no-search": {"search_wishes": False},
    "no-context-history": {"context_history": False},
    "all-time-popularity": {"recent_popularity": False},
    "llm-reader": {"read_with_llm": True},
    "llm-rerank": {"rerank_with_llm": True},
}
err = Console(stderr=True)


def _default_service(settings, catalog):
    from conversation.app import build_service

    from evals.progress import progress_bar

    return build_service(settings, catalog=catalog, progress=progress_bar)


def configured(settings, ablations: list[str]):
    """The settings for this run: the eval's base plus each ablation's toggles; unknown names refused."""
    update: dict[str, Any] = dict(BASE)
    for name in ablations:
        if name not in ABLATIONS:
            raise typer.BadParameter(f"unknown ablation {name!r}; one of {', '.join(ABLATIONS)}")
        update.update(ABLATIONS[name])
    missing = [k for k in update if k not in type(settings).model_fields]
    if missing:
        raise typer.BadParameter(f"these settings do not exist (yet): {', '.join(missing)}")
    return settings.model_copy(update=update), update


def redial_command(*, data: Path | None, data_root: Path, limit: int | None, as_json: bool, ablations: list[str],
                   fresh: bool, linking: bool, settings, make_service: Callable = _default_service,
                   reports: Path = Path("reports"), movielens: Path = MOVIELENS) -> dict[str, Any]:
    from evals.redial.catalog import load_redial_catalog

    root = data_root / "redial"
    command = "concierge eval redial " + " ".join(sys.argv[3:]) if sys.argv[1:3] == ["eval", "redial"] else \
        "concierge eval redial"
    catalog = load_redial_catalog(root / "id2info.json", movielens=movielens if movielens.is_dir() else None)
    started = time.perf_counter()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if linking:
        from evals.redial.linking import evaluate
        from evals.redial.report import write_linking_report

        source = data or root / "valid_data.jsonl"
        result = {"command": command, "date": date, "data": str(source), "linking": evaluate(source, catalog)}
        result["report"] = str(write_linking_report(result, reports / "redial-linking.md"))
        return result
    return _benchmark(command=command, date=date, data=data or root / "valid_data_processed.jsonl",
                      limit=limit, ablations=ablations, fresh=fresh, settings=settings, catalog=catalog,
                      make_service=make_service, reports=reports, started=started, progress=not as_json)


def _benchmark(*, command, date, data, limit, ablations, fresh, settings, catalog, make_service, reports, started,
               progress) -> dict[str, Any]:
    from evals.redial.report import write_redial_report
    from evals.redial.run import load_samples, run, summary
    from evals.progress import progress_bar

    run_settings, update = configured(settings, ablations)
    prefix = "" if data.name == "valid_data_processed.jsonl" else f"{data.stem}-"
    config = prefix + ("+".join(ablations) or "full")
    out = run_settings.data_dir / "runs" / f"redial-{config}.jsonl"
    if fresh and out.exists():
        out.unlink()
    samples = load_samples(data, limit=limit)
    service = make_service(run_settings, catalog)
    names = {item_id: " ".join(item.title.split()) for item_id, item in catalog.items.items()}
    if progress:
        with progress_bar(len(samples), f"redial {config}") as advance:
            rows = run(service, samples, names, out=out, on_progress=advance)
    else:
        rows = run(service, samples, names, out=out)
    result = {"command": command, "date": date, "config": config, "overrides": update, "data": str(data),
              "catalog_items": len(catalog), "interactions": len(catalog.interactions), "runs_file": str(out),
              "seconds": time.perf_counter() - started, "summary": summary(rows)}
    result["ablations"] = _other_configs(out, prefix, [s.index for s in samples])
    numbered = [r for r in rows if str(r["dialog_id"]).isdigit()]
    halves = {"even": [r for r in numbered if int(r["dialog_id"]) % 2 == 0],
              "odd": [r for r in numbered if int(r["dialog_id"]) % 2]}
    result["halves"] = {name: summary(part) for name, part in halves.items() if part}
    name = "redial.md" if config == "full" else f"redial-{config}.md"
    result["report"] = str(write_redial_report(result, reports / name))
    return result


def _other_configs(out: Path, prefix: str, indexes: list[int]) -> dict[str, dict]:
    """Summaries of the other configurations of this data file already scored on exactly these samples."""
    from evals.redial.run import done_rows, summary

    found = {}
    for path in sorted(out.parent.glob(f"redial-{prefix}*.jsonl")):
        other = path.stem[len("redial-") + len(prefix):]
        if path == out or not _is_config(other):
            continue
        rows = done_rows(path)
        if all(i in rows for i in indexes):
            found[other] = summary([rows[i] for i in indexes])
    return found


def _is_config(name: str) -> bool:
    return name == "full" or all(part in ABLATIONS for part in name.split("+"))


def eval_redial(
    data: Annotated[Path | None, typer.Option(help="A file in valid_data_processed.jsonl's format (with "
                                              "--linking: in valid_data.jsonl's format).")] = None,
    data_root: Annotated[Path, typer.Option(help="Folder holding redial/ (id2info.json and the dialogs).")] = DEFAULT_ROOT,
    limit: Annotated[int | None, typer.Option(help="Score only the first N samples.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ablation: Annotated[list[str] | None, typer.Option(help=f"Turn a part off (or the LLM reader on): "
                                                       f"{', '.join(ABLATIONS)}. Repeatable.")] = None,
    fresh: Annotated[bool, typer.Option(help="Forget earlier scored samples of this config and start over.")] = False,
    linking: Annotated[bool, typer.Option(help="Measure the entity linker instead: precision and recall of titles "
                                          "linked in valid_data.jsonl messages (reports/redial-linking.md).")] = False,
) -> None:
    """ReDial (iEvaLM "Original"): read each context with the product, rank the 6,583 movies, R/NDCG/MRR@k with
    bootstrap CIs; resumable (.concierge/runs/redial-<config>.jsonl); writes reports/redial.md."""
    from conversation.settings import Settings

    result = redial_command(data=data, data_root=data_root, limit=limit, as_json=as_json, ablations=ablation or [],
                            fresh=fresh, linking=linking, settings=Settings())
    if as_json:
        print(json.dumps(result))
        return
    if linking:
        r = result["linking"]
        err.print(f"linking: precision {r['precision']:.3f}, recall {r['recall']:.3f} -> {result['report']}")
        return
    a = result["summary"]["all"]
    err.print(f"{result['summary']['samples']} samples: R@1 {a['recall@1']['value']:.3f}, R@10 "
              f"{a['recall@10']['value']:.3f}, R@50 {a['recall@50']['value']:.3f} -> {result['report']}")
