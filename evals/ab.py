"""Paired prompt-variant A/B runs: both variants meet the same simulated users with the same seeds.

A variant is a prompt id; the component says which `ServiceConfig` field takes it (`COMPONENTS`), so the
two variants differ only in the prompt file the component loads. Each variant's sessions are appended to
their own JSONL file as they finish, so an interrupted A/B resumes. Sessions are paired by key: the rule
simulator's (user, target) pair, or the LLM simulator's (case id, seed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.planner import PLANNER_VARIABLES
from agent.prompts import PromptError, known_prompts, load_prompt
from conversation.service import ConversationService, ServiceConfig
from evals.jsonl import open_for_append, read_rows
from evals.ab_report import compare
from evals.rule_eval import Bench, RuleSetup
from evals.rule_sim import MAX_TURNS, SessionResult, hdcg, run_session

# Which ServiceConfig field each component reads its prompt id from, and the prompt whose variables a
# variant of that component must declare (the component renders exactly those).
COMPONENTS: dict[str, tuple[str, str]] = {
    "planner": ("planner_prompt", "planner.v1"),
    "rerank": ("rerank_prompt", "rerank.v1"),
    "nlu": ("nlu_prompt", "extract.v1"),
}
# Components that offer their prompts more variables than the reference declares.
OFFERED: dict[str, frozenset[str]] = {"planner": PLANNER_VARIABLES}
# What a component needs to run at all: the planner only in `llm` mode, the NLU only on free text.
NEEDS: dict[str, dict[str, str]] = {"planner": {"mode": "llm"}, "nlu": {"simulator": "llm"}}


class ABError(ValueError):
    """An A/B cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class Variant:
    label: str  # "A" or "B"
    prompt_id: str


def parse_variants(specs: Sequence[str]) -> list[Variant]:
    """`["A=planner.v1", "B=planner.v2"]` -> two variants with distinct labels and prompts."""
    variants = []
    for spec in specs:
        label, sep, prompt_id = spec.partition("=")
        if not sep or not label.strip() or not prompt_id.strip():
            raise ABError(f"--variant takes LABEL=PROMPT_ID (e.g. A=planner.v1), got {spec!r}")
        variants.append(Variant(label.strip(), prompt_id.strip()))
    if len(variants) != 2:
        raise ABError(f"an A/B needs exactly two --variant options, got {len(variants)}")
    if variants[0].label == variants[1].label or variants[0].prompt_id == variants[1].prompt_id:
        raise ABError("the two variants need different labels and different prompt ids")
    return variants


def component_prompts(component: str) -> list[str]:
    """Known prompt ids a component can load: the same declared variables as its reference prompt, or for a
    component that offers more (the planner), a subset of what it offers within the reference's family."""
    _field, reference = _component(component)
    wanted = set(load_prompt(reference).variables)
    offered = OFFERED.get(component)
    family = reference.split(".")[0] + "."

    def fits(prompt_id: str) -> bool:
        declared = set(load_prompt(prompt_id).variables)
        if offered is not None and prompt_id.startswith(family):
            return declared <= offered
        return declared == wanted

    return [p for p in known_prompts() if fits(p)]


def check_variant(component: str, prompt_id: str) -> None:
    """Fail fast: an unknown prompt id lists the known ones; a prompt of another component says so."""
    field, _reference = _component(component)
    if field not in _config_fields():
        raise ABError(f"the conversation service has no `{field}` setting, so the {component} prompt cannot be "
                      f"varied per run; components it can vary: "
                      + ", ".join(c for c, (f, _r) in COMPONENTS.items() if f in _config_fields()))
    try:
        load_prompt(prompt_id)
    except PromptError as exc:
        raise ABError(str(exc)) from None
    fits = component_prompts(component)
    if prompt_id not in fits:
        raise ABError(f"prompt {prompt_id!r} is not a {component} prompt; {component} prompts: {', '.join(fits)}")


def check_run(component: str, *, simulator: str, mode: str) -> None:
    """A component that would never be called in this run makes an A/B of two identical runs: refuse."""
    _component(component)
    for key, needed in NEEDS.get(component, {}).items():
        given = {"simulator": simulator, "mode": mode}[key]
        if given != needed:
            raise ABError(f"the {component} prompt is only used with --{key} {needed} (got --{key} {given})")


def variant_config(base: ServiceConfig, component: str, prompt_id: str) -> ServiceConfig:
    """The base service configuration with the component's prompt set to this variant's id."""
    field, _reference = _component(component)
    return dataclasses.replace(base, **{field: prompt_id})


def runs_file(folder: Path, *, name: str, variant: Variant) -> Path:
    """Where a variant's sessions go: one JSONL per (A/B name, prompt id)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"ab-{name}-{variant.prompt_id}")
    return Path(folder) / f"{safe}.jsonl"


def _component(component: str) -> tuple[str, str]:
    if component not in COMPONENTS:
        raise ABError(f"unknown component {component!r}; choose one of {', '.join(COMPONENTS)}")
    return COMPONENTS[component]


def _config_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(ServiceConfig)}


class MeteredService:
    """The service, plus the LLM tokens and calls of every turn since `reset()` (the rule simulator's
    results carry no token counts)."""

    def __init__(self, service: ConversationService) -> None:
        self._service = service
        self.reset()

    def reset(self) -> None:
        self.prompt_tokens = self.completion_tokens = self.llm_calls = 0

    def respond_structured(self, session_id: str, feedback, **kwargs):
        result = self._service.respond_structured(session_id, feedback, **kwargs)
        for call in result.trace.llm_calls:
            self.llm_calls += 1
            self.prompt_tokens += call.prompt_tokens
            self.completion_tokens += call.completion_tokens
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


def rule_row(result: SessionResult, meter: MeteredService, *, seed: int, prompt_id: str) -> dict:
    """One rule-simulator session as an A/B record (turns as in AT: a failure counts MAX_TURNS + 1)."""
    row = result.as_dict()
    row.update(key=f"{result.user}:{result.target}", seed=seed, prompt_id=prompt_id,
               turns=result.turn if result.success else MAX_TURNS + 1,
               hdcg=hdcg(result.turn, result.rank) if result.success else 0.0,
               prompt_tokens=meter.prompt_tokens, completion_tokens=meter.completion_tokens,
               tokens=meter.prompt_tokens + meter.completion_tokens, llm_calls=meter.llm_calls)
    return row


def play_rule_session(meter: MeteredService, bench: Bench, user: str, target: str, *, seed: int,
                      prompt_id: str) -> dict:
    """One rule-simulator session with its token count."""
    meter.reset()
    attrs = bench.graph.attributes_of(bench.graph.row_of[target])
    result = run_session(meter, user=user, target=target, target_attrs=attrs, seed=seed)
    return rule_row(result, meter, seed=seed, prompt_id=prompt_id)


def rule_service(bench: Bench, config: ServiceConfig, *, model) -> ConversationService:
    """The real service over the benchmark catalog with this variant's configuration."""
    service = ConversationService(bench.catalog, model=model, config=config, scorer=bench.scorer)
    service.policy.graph = bench.graph  # share the one graph
    return service


def base_rule_config(setup: RuleSetup, *, mode: str) -> ServiceConfig:
    """The rule benchmark's configuration (no phrasing: the rule simulator reads the structured action)."""
    return ServiceConfig(policy=setup.policy(), mode=mode, phrase=False)


def pair_rows(a_rows: Sequence[dict], b_rows: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """The sessions both variants finished, in A's order, matched by key."""
    b_by_key = {str(r["key"]): r for r in b_rows}
    a_kept = [r for r in a_rows if str(r["key"]) in b_by_key]
    return a_kept, [b_by_key[str(r["key"])] for r in a_kept]


@dataclass
class VariantRun:
    variant: Variant
    rows: list[dict]
    resumed: int  # sessions found in the results file before this run
    runs_file: Path


def run_rule_ab(bench: Bench, pairs: Sequence[tuple[str, str]], *, component: str, variants: Sequence[Variant],
                base: ServiceConfig, model, seed: int, folder: Path, tag: str,
                on_progress: Callable[[str, int], None] | None = None) -> list[VariantRun]:
    """Both variants over the same rule-simulator pairs and seed, each resuming from its own JSONL.

    Pairs are played in order, A then B for each, so an interrupted A/B leaves paired sessions behind.
    Sessions run one at a time, each saved as it ends (the in-process model serialises its calls anyway).
    `on_progress(label, finished)` is told each variant's count of finished sessions.
    """
    keys = [f"{u}:{t}" for u, t in pairs]
    paths = [runs_file(folder, name=tag, variant=v) for v in variants]
    done = [read_rows(path) for path in paths]
    resumed = [len(set(keys) & set(d)) for d in done]
    meters = [MeteredService(rule_service(bench, variant_config(base, component, v.prompt_id), model=model))
              for v in variants]
    sinks = [open_for_append(path) for path in paths]
    try:
        for variant, count in zip(variants, resumed):
            if on_progress:
                on_progress(variant.label, count)
        for (user, target), key in zip(pairs, keys):
            for variant, meter, rows, sink in zip(variants, meters, done, sinks):
                if key in rows:
                    continue
                rows[key] = play_rule_session(meter, bench, user, target, seed=seed, prompt_id=variant.prompt_id)
                sink.write(json.dumps(rows[key]) + "\n")
                sink.flush()
                os.fsync(sink.fileno())  # a finished session survives a crash of the machine too
                if on_progress:
                    on_progress(variant.label, sum(k in rows for k in keys))
    finally:
        for sink in sinks:
            sink.close()
    return [VariantRun(v, [rows[k] for k in keys], count, path)
            for v, rows, count, path in zip(variants, done, resumed, paths)]


def summarise(runs: Sequence[VariantRun], *, simulator: str, seed: int) -> dict:
    """Per-variant facts and the paired comparison (only sessions both variants finished are paired)."""
    a, b = runs
    a_rows, b_rows = pair_rows(a.rows, b.rows)
    variants = {}
    for run in runs:
        prompt = load_prompt(run.variant.prompt_id)
        variants[run.variant.label] = {"prompt": prompt.id, "description": prompt.description,
                                       "sessions": len(run.rows), "resumed": run.resumed,
                                       "runs_file": str(run.runs_file)}
    summary = compare(a_rows, b_rows, simulator=simulator, seed=seed, max_turn=MAX_TURNS + 1)
    for run in runs:
        side = "A" if run is a else "B"
        variants[run.variant.label]["metrics"] = {m: d[side.lower()] for m, d in summary["deltas"].items()}
    return {"labels": [a.variant.label, b.variant.label], "variants": variants, "summary": summary}


def sim_rows(records: Sequence[dict]) -> list[dict]:
    """The LLM simulator's records with a pairing key and the agent's own share of tokens and time."""
    return [{**r, "key": f"{r['case_id']}:{r['seed']}", "agent_tokens": r["tokens_by_role"]["agent"],
             "agent_latency_s": r["latency_by_role"]["agent"]} for r in records]


def run_sim_ab(cases: Sequence, *, component: str, variants: Sequence[Variant], base: ServiceConfig, model,
               catalog_for: Callable, simulator_factory: Callable, judge=None, sessions: int, seed: int,
               concurrency: int, folder: Path, tag: str,
               on_progress: Callable[[str, int], None] | None = None,
               make_service: Callable | None = None) -> list[VariantRun]:
    """Both variants against the same LLM simulated users: the same (case, seed) plan, one JSONL each.

    The plan is played in steps of `concurrency` sessions, A then B, so an interrupted A/B leaves paired
    sessions behind (run_sim resumes each step from the variant's file). `catalog_for(case)` gives the
    case's catalog; each variant gets one service per catalog, shared by the runner's threads. Records are
    run_sim's (transcripts included), plus `key`, `agent_tokens` and `agent_latency_s`. `make_service(catalog,
    config, model)` builds the agent (the CLI passes the product's `build_service`; default: the bare service).
    """
    from evals.sim_runner import read_records, run_sim, session_plan

    make_service = make_service or (lambda catalog, config, model: ConversationService(catalog, model=model,
                                                                                       config=config))

    planned = {(case.id, s) for case, s in session_plan(cases, sessions, seed)}
    paths = [runs_file(folder, name=tag, variant=v) for v in variants]
    resumed = [len(planned & set(read_records(path))) for path in paths]
    factories = [_shared_services(lambda case, config=variant_config(base, component, v.prompt_id):
                                  make_service(catalog_for(case), config, model))
                 for v in variants]
    step = max(1, concurrency)
    records: list[list[dict]] = [[] for _v in variants]
    for upto in [*range(step, sessions, step), sessions]:
        for n, (variant, path, factory) in enumerate(zip(variants, paths, factories)):
            finished = [0]  # run_sim reports the sessions already in the file first, then one per session

            def progress(k: int, label: str = variant.label, finished: list = finished) -> None:
                finished[0] += k
                if on_progress:
                    on_progress(label, finished[0])

            records[n] = run_sim(cases, service_factory=factory, simulator_factory=simulator_factory, sessions=upto,
                                 concurrency=concurrency, seed=seed, out_jsonl=path, judge=judge, progress=progress)
    return [VariantRun(v, sim_rows(rows), count, path)
            for v, rows, count, path in zip(variants, records, resumed, paths)]


def _shared_services(build: Callable) -> Callable:
    """A service factory that builds one service per case catalog and hands the same one to every thread."""
    services: dict[str, ConversationService] = {}
    lock = threading.Lock()

    def factory(case) -> ConversationService:
        with lock:
            if case.catalog not in services:
                services[case.catalog] = build(case)
            return services[case.catalog]

    return factory
