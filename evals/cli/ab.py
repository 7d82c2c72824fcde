"""`concierge ab`: a paired prompt-variant A/B of one component (planner, rerank or nlu).

Both variants meet the same simulated users with the same seeds. The report goes to reports/ab-<name>.md
and .html (plots as PNGs next to them). With --json, one object on stdout with these keys:

- command, date, seconds, name, component, simulator, dataset and split (rule) or cases (llm), mode, seed,
  sessions (asked for), model, cache (the response cache used, or null), setting (one line on the run)
- labels: the two variant labels in order [A, B]
- variants: {label: {prompt, description, sessions, resumed, runs_file, metrics: {metric: mean}}}
- summary.pairs: sessions both variants finished (the paired sample)
- summary.deltas: {metric: {n, a, b, delta (B - A), ci95: [low, high]}}; metrics are success, turns
  (a rule failure counts 15), hdcg, tokens, latency_s, llm_calls, fallbacks, invalid_shown for the rule
  simulator; success, turns, abandoned, reflections, reflections_honoured, agent_tokens, agent_latency_s,
  tokens and latency_s (agent + simulated user + judge), agent_fallbacks, invalid_ids_shown, leak_count and
  judge.<rating> for the LLM simulator (those present in the records)
- summary.mcnemar_success: {a_only, b_only, method, statistic, p_value}
- summary.wilcoxon_turns: {n, n_nonzero, median_delta, method, statistic, p_value}
- summary.cost: {A|B: {successes, sessions, tokens, latency_s, tokens_per_success, latency_s_per_success}},
  the agent's tokens and time only
- summary.success_by_turn: {A|B: [share succeeded by turn 1, 2, ...]}
- report, report_html: where the reports were written
"""

from __future__ import annotations

import hashlib
import json as jsonlib
import re
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from agent.backends import build_chat_model
from evals.cli.common import LASTFM_ROOT, REPO, Dataset, Mode, err
from evals.cli.common import fail as _fail
from evals.models import CatalogLoader, ModelFactory, cached_model
from evals.progress import bars as _bar
from retrieval.loaders import load_catalog


class Component(str, Enum):
    planner = "planner"
    rerank = "rerank"
    nlu = "nlu"


class Simulator(str, Enum):
    rule = "rule"
    llm = "llm"


def ab(
    component: Annotated[Component, typer.Option(help="Which component's prompt the variants replace.")],
    variant: Annotated[list[str], typer.Option("--variant", help="LABEL=PROMPT_ID, given twice: --variant A=planner.v1 --variant B=planner.v2.")],
    simulator: Annotated[Simulator, typer.Option(help="rule: UNICORN's yes/no simulator on LastFM; llm: the LLM simulated users of --cases.")] = Simulator.rule,
    sessions: Annotated[int, typer.Option(min=1, help="Paired sessions per variant (a seeded sample of pairs or cases).")] = 100,
    dataset: Annotated[Dataset, typer.Option(help="Rule simulator: lastfm or lastfm_star.")] = Dataset.lastfm,
    mode: Annotated[Mode, typer.Option(help="graph: CPR decides; llm: the LLM planner picks among CPR's actions.")] = Mode.llm,
    cases: Annotated[Path | None, typer.Option(help="LLM simulator: the cases file (JSONL).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample, the openings and the simulated users.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="LLM simulator: sessions played at once (threads). Rule sessions with an LLM run one at a time.")] = 1,
    split: Annotated[str, typer.Option(help="Rule simulator: which pairs to sample (test or valid).")] = "test",
    data_root: Annotated[Path, typer.Option(help="Folder holding lastfm/ and lastfm_star/.")] = LASTFM_ROOT,
    name: Annotated[str | None, typer.Option(help="Report name (default COMPONENT-A-vs-B-SIMULATOR).")] = None,
    fresh: Annotated[bool, typer.Option(help="Ignore sessions saved by an earlier run of the same A/B.")] = False,
    judge: Annotated[bool, typer.Option(help="LLM simulator: let the LLM judge rate each conversation.")] = True,
    cache: Annotated[Path | None, typer.Option(help="LLM response cache (SQLite): stores every call and replays those it holds, with the latency recorded when the model answered.")] = None,
    report: Annotated[Path | None, typer.Option(help="Markdown report path (default reports/ab-NAME.md; .html beside it).")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout (keys in the module docstring).")] = False,
    *,
    model_factory: ModelFactory = build_chat_model,
    catalog_loader: CatalogLoader = load_catalog,
) -> None:
    """Paired A/B of two prompt variants: deltas with bootstrap CIs, McNemar, Wilcoxon, cost per success."""
    from conversation.settings import Settings

    variants = _variants(component, variant, simulator=simulator, mode=mode, cases=cases)
    settings = Settings()
    name = name or re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{component.value}-{variants[0].prompt_id}-vs-"
                                                      f"{variants[1].prompt_id}-{simulator.value}")
    loaded = _load_cases(cases) if simulator is Simulator.llm else []
    model = _model(settings, cache, model_factory)
    started = datetime.now(timezone.utc)
    if simulator is Simulator.rule:
        runs, facts = _rule_runs(settings, component.value, variants, model, dataset=dataset.value, mode=mode.value,
                                 split=split, sessions=sessions, seed=seed, data_root=data_root,
                                 fresh=fresh)
    else:
        runs, facts = _sim_runs(settings, component.value, variants, model, cases=cases, loaded=loaded, mode=mode.value,
                                sessions=sessions, seed=seed, workers=workers, fresh=fresh, judge=judge,
                                catalog_loader=catalog_loader)
    from evals.ab import summarise
    from evals.ab_report import write_ab_report

    command = (_knob_prefix(settings) if simulator is Simulator.llm else "") + (
               f"concierge ab --component {component.value} " + " ".join(f"--variant {v}" for v in variant)
               + f" --simulator {simulator.value} --sessions {sessions} --mode {mode.value}"
               + (f" --dataset {dataset.value}" if simulator is Simulator.rule else f" --cases {cases}")
               + (f" --seed {seed}" if seed else ""))
    out = {"command": command, "date": started.isoformat(timespec="seconds"),
           "seconds": (datetime.now(timezone.utc) - started).total_seconds(), "name": name,
           "component": component.value, "simulator": simulator.value, "mode": mode.value, "seed": seed,
           "sessions": sessions, "model": model.name, "cache": str(cache) if cache else None, **facts,
           **summarise(runs, simulator=simulator.value, seed=seed)}
    md, html = write_ab_report(out, report or Path("reports") / f"ab-{name}.md")
    out.update(report=str(md), report_html=str(html))
    if json:
        print(jsonlib.dumps(out))
        return
    _print_summary(out)


def _variants(component: Component, variant: list[str], *, simulator: Simulator, mode: Mode, cases: Path | None):
    """The two variants, checked (known prompts, a component the simulator can vary, a cases file) before any
    model loads."""
    from evals.ab import ABError, check_run, check_variant, parse_variants

    try:
        variants = parse_variants(variant)
        for v in variants:
            check_variant(component.value, v.prompt_id)
        check_run(component.value, simulator=simulator.value, mode=mode.value)
        if simulator is Simulator.llm and cases is None:
            raise ABError("--simulator llm needs --cases FILE (a JSONL cases file)")
    except ABError as exc:
        _fail(str(exc))
    return variants


def _model(settings, cache: Path | None, model_factory: ModelFactory):
    from agent.llm import LLMError

    try:
        with err.status("loading the chat model"):
            return cached_model(settings, cache, model_factory=model_factory)
    except LLMError as exc:
        _fail(str(exc))


def _knob_prefix(settings) -> str:
    """CONCIERGE_ variables that move an agent knob off its default (the LLM-simulator A/B depends on them)."""
    from evals.knobs import KNOBS, knob_env

    defaults = type(settings).model_construct()
    return knob_env({k: getattr(settings, k) for k in KNOBS}, {k: getattr(defaults, k) for k in KNOBS})


def _tag(*parts: object) -> str:
    digest = hashlib.sha1(repr(parts[-1]).encode()).hexdigest()[:8]  # the base configuration, shortened
    return "-".join(str(p) for p in parts[:-1]) + f"-{digest}"


def _rule_runs(settings, component: str, variants, model, *, dataset: str, mode: str, split: str, sessions: int,
               seed: int, data_root: Path, fresh: bool):
    from evals.ab import base_rule_config, run_rule_ab, runs_file
    from evals.rule_eval import load_bench, session_pairs, tuned_setup
    from retrieval.catalog import CatalogError

    try:
        with err.status(f"loading {dataset}, its graph and the ranker"):
            bench = load_bench(dataset, root=data_root, data_dir=settings.data_dir)
        pairs = session_pairs(bench.catalog, split, limit=sessions, seed=seed)
    except (CatalogError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    base = base_rule_config(tuned_setup(dataset), mode=mode)
    folder = Path(settings.data_dir) / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    tag = _tag("rule", dataset, mode, model.name, split, f"s{seed}", component, base)
    if fresh:
        for v in variants:
            runs_file(folder, name=tag, variant=v).unlink(missing_ok=True)
    with _bar() as bar:
        tasks = {v.label: bar.add_task(f"{v.label} = {v.prompt_id}", total=len(pairs)) for v in variants}
        runs = run_rule_ab(bench, pairs, component=component, variants=variants, base=base, model=model, seed=seed,
                           folder=folder, tag=tag,
                           on_progress=lambda label, n: bar.update(tasks[label], completed=n))
    setting = (f"{len(pairs)} {split} pairs of {dataset} (seeded sample), `{mode}` mode, rule setup as tuned on "
               f"valid, rule simulator of EAR/SCPR/UNICORN (at most 14 agent actions, lists of 10)")
    return runs, {"dataset": dataset, "split": split, "setting": setting}


def _load_cases(cases: Path) -> list:
    from evals.sim_runner import load_cases

    try:
        return load_cases(cases)
    except ValueError as exc:  # SimCaseError names the line, case and field
        _fail(str(exc))


def _sim_runs(settings, component: str, variants, model, *, cases: Path, loaded: list, mode: str, sessions: int,
              seed: int, workers: int, fresh: bool, judge: bool, catalog_loader: CatalogLoader):
    import dataclasses

    from conversation.app import build_service, service_config
    from evals.ab import run_sim_ab, runs_file
    from evals.simulators.judge import LLMJudge
    from evals.simulators.llm import simulator_factory
    from retrieval.catalog import CatalogError

    base = dataclasses.replace(service_config(settings), mode=mode)
    folder = Path(settings.data_dir) / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    cases_digest = hashlib.sha256(Path(cases).read_bytes()).hexdigest()  # an edited cases file starts afresh
    tag = _tag("sim", Path(cases).stem, mode, model.name, f"s{seed}", component, "judge" if judge else "nojudge",
               (base, cases_digest))
    if fresh:
        for v in variants:
            runs_file(folder, name=tag, variant=v).unlink(missing_ok=True)
    try:
        with _bar() as bar:
            tasks = {v.label: bar.add_task(f"{v.label} = {v.prompt_id}", total=sessions) for v in variants}
            runs = run_sim_ab(loaded, component=component, variants=variants, base=base, model=model,
                              catalog_for=_catalogs(catalog_loader), simulator_factory=simulator_factory(model),
                              judge=LLMJudge(model) if judge else None, sessions=sessions, seed=seed,
                              concurrency=workers, folder=folder, tag=tag,
                              on_progress=lambda label, n: bar.update(tasks[label], completed=n),
                              make_service=lambda catalog, config, agent_model: build_service(
                                  settings, catalog=catalog, model=agent_model, config=config))
    except (CatalogError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    setting = (f"{sessions} sessions of the LLM simulated users in `{cases}` ({len(loaded)} cases), `{mode}` mode, "
               f"agent configured from settings, judge {'on' if judge else 'off'}; simulator, judge and agent share "
               "the model")
    return runs, {"cases": str(cases), "setting": setting}


def _catalogs(catalog_loader: CatalogLoader):
    """A case's catalog (a path relative to the repository unless absolute), each loaded once."""
    loaded: dict[str, object] = {}

    def catalog_for(case):
        if case.catalog not in loaded:
            path = Path(case.catalog)
            loaded[case.catalog] = catalog_loader(path if path.is_absolute() else (REPO / path).resolve())
        return loaded[case.catalog]

    return catalog_for


def _print_summary(out: dict) -> None:
    s, (la, lb) = out["summary"], out["labels"]
    for metric, d in s["deltas"].items():
        err.print(f"{metric:>22}: {la} {d['a']:.4g}  {lb} {d['b']:.4g}  Δ {d['delta']:+.4g}  "
                  f"95% CI [{d['ci95'][0]:.4g}, {d['ci95'][1]:.4g}]")
    if "mcnemar_success" in s:
        err.print(f"McNemar on success p = {s['mcnemar_success']['p_value']:.4g}")
    if "wilcoxon_turns" in s:
        err.print(f"Wilcoxon on turns p = {s['wilcoxon_turns']['p_value']:.4g}")
    err.print(f"reports written to {out['report']} and {out['report_html']}")
