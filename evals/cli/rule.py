"""`concierge eval rule`: the EAR/SCPR/UNICORN multi-round benchmark, with optional tuning on `valid`."""

from __future__ import annotations

import json as jsonlib
import re
from dataclasses import asdict
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from agent.backends import build_chat_model
from evals.cli.common import LASTFM_ROOT, Dataset, Mode, err
from evals.models import ModelFactory, cached_model
from evals.progress import bars as _bar


class NegativeAnswers(str, Enum):
    prune = "prune"
    soft = "soft"


class Ranker(str, Enum):
    ease = "ease"
    popularity = "popularity"


CacheOption = Annotated[Path | None, typer.Option(
    help="llm mode: LLM response cache (SQLite) that stores every call and replays those it holds; `concierge ab "
         "--cache` with the same file then replays the sessions of its arm with the same planner prompt.")]
NegativeAnswersOption = Annotated[NegativeAnswers, typer.Option(
    help="What a 'no' to an attribute does: prune removes every item with it (CPR's path); soft keeps them and "
         "lowers their score per rejected attribute (as UNICORN's and SCPR's agents do; the penalty is tuned on "
         "valid with --tune).")]
RankerOption = Annotated[Ranker, typer.Option(
    help="Item scores behind the policy: ease (trained on train) or popularity (an ablation).")]
ReportOption = Annotated[Path | None, typer.Option(
    help="Markdown report (default reports/rule-DATASET-MODE[-soft][-popularity].md).")]


def eval_rule(
    dataset: Annotated[Dataset, typer.Option(help="UNICORN benchmark: lastfm (33 attributes) or lastfm_star (8,438).")],
    mode: Annotated[Mode, typer.Option(help="graph: CPR policy, no LLM. llm: the LLM planner over CPR's legal actions.")] = Mode.graph,
    split: Annotated[str, typer.Option(help="Which pairs to play: test or valid.")] = "test",
    limit: Annotated[int | None, typer.Option(min=1, help="A seeded sample of this many pairs (default: all).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the openings and of the sample.")] = 0,
    workers: Annotated[int, typer.Option(min=0, help="Worker processes (0: one per core).")] = 0,
    tune: Annotated[bool, typer.Option(help="First choose the policy knobs on `valid` and save them.")] = False,
    tune_limit: Annotated[int, typer.Option(min=100, help="Validation pairs used for tuning.")] = 1000,
    data_root: Annotated[Path, typer.Option(help="Folder holding lastfm/ and lastfm_star/.")] = LASTFM_ROOT,
    fresh: Annotated[bool, typer.Option(help="Ignore results saved by an earlier, interrupted run.")] = False,
    planner_prompt: Annotated[str, typer.Option(help="llm mode: the planner's prompt id (planner.v1, planner.v2, planner.v3).")] = "planner.v3",
    cache: CacheOption = None,
    negative_answers: NegativeAnswersOption = NegativeAnswers.prune,
    ranker: RankerOption = Ranker.ease,
    report: ReportOption = None,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    *,
    model_factory: ModelFactory = build_chat_model,
) -> None:
    """Multi-round success on LastFM / LastFM*: SR@5/10/15, AT, hDCG with 95% CIs (resumable)."""
    from conversation.settings import Settings
    settings = Settings()
    bench, pairs = _load(dataset.value, data_root, settings.data_dir, split=split, limit=limit, seed=seed,
                         popularity=ranker is Ranker.popularity)
    variant = negative_answers.value
    setup, tuned_from = _setup(bench, dataset.value, tune=tune, tune_limit=tune_limit, seed=seed, workers=workers,
                               variant=variant)
    model = _model(settings, planner_prompt, cache, model_factory) if mode is Mode.llm else None
    runs = Path(settings.data_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    model_tag = "" if model is None else f"-{model.name}-{planner_prompt}"
    # Sessions are keyed by (user, target) and a seeded sample of N pairs is the first N of a larger one, so
    # every sample size shares one results file: --limit 200 resumes a stopped --limit 100 run and vice versa.
    sample = _sample_tag(setup, split=split, limit=limit, seed=seed, popularity=ranker is Ranker.popularity)

    def results_of(mode_tag: str) -> Path:  # a file name safe on every system (the model name holds a colon)
        return runs / re.sub(r"[^A-Za-z0-9_.-]+", "_", f"rule-{dataset.value}-{mode_tag}-{sample}.jsonl")

    started = datetime.now(timezone.utc)
    results, resumed = _play(bench, setup, pairs, results_of(f"{mode.value}{model_tag}"), fresh=fresh, seed=seed,
                             workers=workers, model=model, mode=mode, planner_prompt=planner_prompt,
                             label=f"{dataset.value} {mode.value} sessions")
    seconds = (datetime.now(timezone.utc) - started).total_seconds()
    beside = None
    if mode is Mode.llm:  # graph mode on the very same pairs and openings, for a paired comparison
        beside = _graph_beside(bench, setup, pairs, results, seed=seed, workers=workers, results_file=results_of("graph"))
    command, name = _naming(dataset, mode, variant, ranker, split=split, limit=limit, seed=seed,
                            planner_prompt=planner_prompt)
    out = {"command": command, "negative_answers": variant, "ranker": ranker.value,
           "date": started.isoformat(timespec="seconds"), "dataset": dataset.value,
           "mode": mode.value, "split": split, "limit": limit, "seed": seed, "workers": workers or "auto",
           "seconds": seconds, "resumed_sessions": resumed}
    _finish(out, results, seed=seed, setup=setup, tuned_from=tuned_from, model=model, beside=beside,
            planner_prompt=planner_prompt if mode is Mode.llm else None,
            report=report or Path("reports") / f"{name}.md", as_json=json)


def _play(bench, setup, pairs, results_file: Path, *, fresh: bool, seed: int, workers: int, model, mode: Mode,
          planner_prompt: str, label: str) -> tuple[list, int]:
    """Play every pair not yet in `results_file` (all of them with `fresh`); the results and how many were kept."""
    from evals.rule_eval import finished_pairs, run_sessions

    if fresh and results_file.exists():
        results_file.unlink()
    resumed = len(finished_pairs(results_file) & set(pairs))
    with _bar() as bar:
        task = bar.add_task(label, total=len(pairs))
        results = run_sessions(bench, setup, pairs, seed=seed, workers=workers, results_file=results_file,
                               on_progress=lambda n: bar.advance(task, n), model=model, mode=mode.value,
                               chunk=100 if model is None else 1, planner_prompt=planner_prompt)
    return results, resumed


def _naming(dataset: Dataset, mode: Mode, variant: str, ranker: Ranker, *, split: str, limit: int | None, seed: int,
            planner_prompt: str) -> tuple[str, str]:
    """The command that reproduces the run, and the report's name (rule-DATASET-MODE[-soft][-popularity])."""
    command = _command(dataset, mode, split=split, limit=limit, seed=seed, planner_prompt=planner_prompt) + (
        f" --negative-answers {variant}" if variant != "prune" else "") + (
        f" --ranker {ranker.value}" if ranker is not Ranker.ease else "")
    name = f"rule-{dataset.value}-{mode.value}" + ("" if variant == "prune" else f"-{variant}") + (
        "" if ranker is Ranker.ease else f"-{ranker.value}")
    return command, name


def _sample_tag(setup, *, split: str, limit: int | None, seed: int, popularity: bool) -> str:
    """The results file's tag: split, sample, seed and every knob (prune runs keep the names they had before
    the negative-answer variant existed)."""
    knobs = asdict(setup)
    if setup.negative_answers == "prune":
        knobs.pop("negative_answers"), knobs.pop("reject_penalty")
    return f"{split}-{'sample' if limit else 'all'}-s{seed}-" + "-".join(f"{v}" for v in knobs.values()) + (
        "-popularity" if popularity else "")


def _command(dataset: Dataset, mode: Mode, *, split: str, limit: int | None, seed: int, planner_prompt: str) -> str:
    """The command that reproduces the run (options at their defaults left out)."""
    return f"concierge eval rule --dataset {dataset.value} --mode {mode.value}" + (
        f" --split {split}" if split != "test" else "") + (f" --limit {limit}" if limit else "") + (
        f" --seed {seed}" if seed else "") + (
        f" --planner-prompt {planner_prompt}" if mode is Mode.llm and planner_prompt != "planner.v3" else "")


def _load(dataset: str, data_root: Path, data_dir: Path, *, split: str, limit: int | None, seed: int,
          popularity: bool = False):
    from agent.policy import PopularityScorer
    from evals.rule_eval import load_bench, session_pairs
    from retrieval.catalog import CatalogError

    try:
        with err.status(f"loading {dataset}, its graph and the ranker"):
            bench = load_bench(dataset, root=data_root, data_dir=data_dir)
        if popularity:  # the ablation: popularity instead of the EASE ranker
            bench.scorer = PopularityScorer(bench.catalog, bench.graph)
        return bench, session_pairs(bench.catalog, split, limit=limit, seed=seed)
    except (CatalogError, FileNotFoundError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _setup(bench, dataset: str, *, tune: bool, tune_limit: int, seed: int, workers: int, variant: str = "prune"):
    """The policy knobs (tuned now, or as tuned before) and where they came from."""
    from evals.rule_eval import tuned_path, tuned_setup

    setup = _tune(bench, dataset, tune_limit, seed, workers, variant) if tune else tuned_setup(dataset, variant)
    path = tuned_path(dataset, variant)
    return setup, f"evals/tuned/{path.name}" if path.is_file() else "defaults"


def _model(settings, planner_prompt: str, cache: Path | None, model_factory: ModelFactory):
    from agent.llm import LLMError
    from agent.prompts import PromptError, load_prompt

    try:
        load_prompt(planner_prompt)
    except PromptError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    try:
        with err.status("loading the chat model"):
            return cached_model(settings, cache, model_factory=model_factory)
    except LLMError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _graph_beside(bench, setup, pairs, results, *, seed: int, workers: int, results_file: Path) -> dict:
    from evals.rule_eval import run_sessions
    from evals.rule_report import confidence_intervals, paired_deltas
    from evals.rule_sim import rule_metrics

    with err.status("graph mode on the same sample"):
        graph_results = run_sessions(bench, setup, pairs, seed=seed, workers=workers, results_file=results_file,
                                     chunk=100)
    return {**rule_metrics(graph_results), "ci95": confidence_intervals(graph_results, seed=seed),
            "paired_delta": paired_deltas(results, graph_results, seed=seed)}


def _finish(out: dict, results, *, seed: int, setup, tuned_from: str, model, beside, planner_prompt: str | None,
            report: Path, as_json: bool) -> None:
    from evals.rule_report import confidence_intervals, write_rule_report
    from evals.rule_sim import rule_metrics

    metrics = rule_metrics(results)
    out.update({**metrics, "ci95": confidence_intervals(results, seed=seed), "setup": asdict(setup),
                "tuned_from": tuned_from, "planner_prompt": planner_prompt,
                "cache": model.cache.stats() if model is not None and hasattr(model, "cache") else None,
                "graph_same_sample": beside})
    path = write_rule_report(out, report)
    if as_json:
        print(jsonlib.dumps({**out, "report": str(path)}))
        return
    err.print(f"SR@5 {metrics['sr5']:.4f}  SR@10 {metrics['sr10']:.4f}  SR@15 {metrics['sr15']:.4f}  "
              f"AT {metrics['at']:.2f}  hDCG {metrics['hdcg']:.4f}  invalid shown {metrics['invalid_ids_shown']}")
    err.print(f"report written to {path}")


def _tune(bench, dataset: str, tune_limit: int, seed: int, workers: int, variant: str):
    from evals.rule_eval import session_pairs, tune, tuned_path

    pairs = session_pairs(bench.catalog, "valid", limit=tune_limit, seed=seed)
    with _bar() as bar:
        task = bar.add_task("tuning on valid (configurations tried)", total=None)

        def step(setup, metrics):
            bar.advance(task)
            err.print(f"  {asdict(setup)} -> SR@15 {metrics['sr15']:.4f} hDCG {metrics['hdcg']:.4f}")

        best, history = tune(bench, pairs, seed=seed, workers=workers, on_step=step, negative_answers=variant)
    path = tuned_path(dataset, variant)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"dataset": dataset, "split": "valid", "sessions": len(pairs), "seed": seed, "setup": asdict(best),
              "tried": history, "command": f"concierge eval rule --dataset {dataset} --tune --tune-limit {tune_limit}"
                                           + (f" --negative-answers {variant}" if variant != "prune" else "")}
    path.write_text(jsonlib.dumps(record, indent=2), encoding="utf-8")
    err.print(f"chosen on valid: {asdict(best)}")
    return best
