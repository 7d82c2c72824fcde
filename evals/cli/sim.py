"""`concierge eval sim`: LLM-simulated users against the real service; resumable, cached, reported."""

from __future__ import annotations

import hashlib
import json as jsonlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.backends import build_chat_model
from evals.cli.common import REPO, Mode, err
from evals.cli.common import fail as _fail
from evals.knobs import KNOBS, knob_env
from evals.models import NO_MODEL, CatalogLoader, ModelFactory, ModelPool, ServicePool
from retrieval.loaders import load_catalog


def run_tag(cases_file: Path, parts: dict[str, Any]) -> str:
    """A short fingerprint of what makes two runs comparable (cases, models, prompts, knobs), not sessions."""
    digest = hashlib.sha256(cases_file.read_bytes()).hexdigest()
    text = jsonlib.dumps({"cases": digest, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _agent_settings(settings: Any, backend: str, mode: Mode) -> Any:
    if backend in NO_MODEL:
        if mode is Mode.llm:
            _fail("--mode llm needs an agent model: pass --backend local or openai")
        return settings.model_copy(update={"phrase_with_llm": False, "rerank_with_llm": False, "mode": "graph"})
    return settings.model_copy(update={"mode": mode.value})


def eval_sim(
    cases: Annotated[Path, typer.Option(help="Cases file (JSONL): evals/cases/movielens.jsonl, redial.jsonl, lastfm.jsonl.")],
    sessions: Annotated[int, typer.Option(min=1, help="Sessions to play; beyond the number of cases, cases repeat with seed+1, +2, ...")] = 30,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Sessions played at once (threads).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the simulated users (paired runs share it).")] = 0,
    backend: Annotated[str | None, typer.Option(help="Agent model: local, openai, openai:MODEL, or none (templates, CPR only). Default: CONCIERGE_LLM_BACKEND.")] = None,
    simulator_backend: Annotated[str, typer.Option(help="Simulated user's model: same (as --backend), local, openai[:MODEL], or template.")] = "same",
    judge_backend: Annotated[str, typer.Option(help="Judge's model: same (as the simulator), local, openai[:MODEL], or none.")] = "same",
    mode: Annotated[Mode, typer.Option(help="Agent mode: graph (CPR decides) or llm (the LLM planner picks among CPR's actions).")] = Mode.graph,
    simulator_prompt: Annotated[str, typer.Option(help="Simulator prompt id.")] = "simulator.v1",
    judge_prompt: Annotated[str, typer.Option(help="Judge prompt id.")] = "judge.v1",
    max_turns: Annotated[int, typer.Option(min=1, max=30, help="Agent turns before a session ends unfinished.")] = 14,
    catalog: Annotated[Path | None, typer.Option(help="Catalog for every case (default: each case's own catalog).")] = None,
    cache: Annotated[Path | None, typer.Option(help="LLM response cache (SQLite); default <data_dir>/llm-cache.sqlite3.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Call the models every time.")] = False,
    name: Annotated[str | None, typer.Option(help="Run name for reports/sim-NAME.md (default: the cases file's stem).")] = None,
    report: Annotated[Path | None, typer.Option(help="Markdown report path (default reports/sim-NAME.md; plots go next to it).")] = None,
    fresh: Annotated[bool, typer.Option(help="Discard this configuration's saved sessions and play them again.")] = False,
    compare_to: Annotated[Path | None, typer.Option(help="An earlier run's results JSONL: check session by session and metric by metric that this run (e.g. a replay from the cache) is identical.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    *,
    model_factory: ModelFactory = build_chat_model,
    catalog_loader: CatalogLoader = load_catalog,
) -> None:
    """Simulated users (persona + hidden need) chat with the agent: success, turns, abandonment, reflections, judge.

    Every finished session is appended to <data_dir>/runs/sim-NAME-<config>.jsonl at once; rerunning the same
    command resumes and repeats nothing. With the LLM cache, a rerun with --fresh replays every call exactly.
    """
    from evals.progress import progress_bar
    from evals.sim_runner import run_sim
    from evals.simulators.llm import simulator_factory
    from retrieval.catalog import CatalogError

    setup = _setup(cases, backend=backend, simulator_backend=simulator_backend, judge_backend=judge_backend,
                   mode=mode, prompts=(simulator_prompt, judge_prompt), cache=cache, no_cache=no_cache,
                   catalog=catalog, max_turns=max_turns, name=name,
                   model_factory=model_factory, catalog_loader=catalog_loader)
    if fresh and setup.out.exists():
        setup.out.unlink()
    resumed = _resumed(setup, sessions, seed)
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    try:
        with progress_bar(sessions, f"sim {setup.name}") as advance:
            records = run_sim(setup.cases, service_factory=setup.services, sessions=sessions, concurrency=concurrency,
                              simulator_factory=simulator_factory(setup.sim_model, prompt_id=simulator_prompt),
                              seed=seed, out_jsonl=setup.out, judge=setup.judge, progress=advance, max_turns=max_turns)
    except (CatalogError, FileNotFoundError) as exc:
        _fail(str(exc))
    command = (f"{setup.env_prefix()}concierge eval sim --cases {cases} --sessions {sessions} --concurrency {concurrency} --seed {seed} "
               f"--backend {setup.specs[0]} --simulator-backend {setup.specs[1]} --judge-backend {setup.specs[2]} "
               f"--mode {mode.value}")
    run = setup.info(records, command=command, sessions=sessions, concurrency=concurrency, seed=seed,
                     started=started, seconds=time.perf_counter() - clock, resumed=resumed)
    _save_run(setup.out, run)
    if compare_to is not None:
        run["comparison"] = _compare(records, compare_to, max_turns)
    _finish(run, records, report or Path("reports") / f"sim-{setup.name}.md", json)


@dataclass
class SimSetup:
    """Everything a sim run was resolved to: cases, model specs and models, judge, services, results file."""

    name: str
    cases_file: Path
    cases: list
    specs: tuple[str, str, str]  # agent, simulator, judge
    mode: str
    prompts: tuple[str, str]
    max_turns: int
    agent_model: Any
    sim_model: Any
    judge: Any
    services: ServicePool
    store: Any
    out: Path
    knobs: dict[str, Any] = field(default_factory=dict)  # the agent's policy settings (part of the run tag)
    knob_defaults: dict[str, Any] = field(default_factory=dict)  # ... as they would be with no CONCIERGE_ variable

    def env_prefix(self) -> str:
        return knob_env(self.knobs, self.knob_defaults)

    def info(self, records: list[dict], *, command: str, sessions: int, concurrency: int, seed: int,
             started: datetime, seconds: float, resumed: int) -> dict[str, Any]:
        """What the report and --json say about the run (command, models, prompts, seeds, cache, timing)."""
        return {
            "name": self.name, "command": command, "date": started.isoformat(timespec="seconds"),
            "cases": str(self.cases_file), "cases_count": len(self.cases), "sessions": sessions,
            "concurrency": concurrency, "seed": seed, "mode": self.mode, "max_turns": self.max_turns,
            "seconds": seconds, "resumed_sessions": resumed, "results_file": str(self.out),
            "models": {"agent": self.agent_model.name if self.agent_model else "none",
                       "simulator": self.sim_model.name if self.sim_model else "template",
                       "judge": self.judge.model_name if self.judge else None},
            "prompts": {"agent": sorted({p for r in records for p in r["prompts"]["agent"]}),
                        "simulator": self.prompts[0], "judge": self.prompts[1] if self.judge else None},
            "cache": self.store.stats() if self.store is not None else None,
            "code": code_version(), "agent_settings": self.knobs,
        }


def _setup(cases: Path, *, backend: str | None, simulator_backend: str, judge_backend: str, mode: Mode,
           prompts: tuple[str, str], cache: Path | None, no_cache: bool, catalog: Path | None, max_turns: int,
           name: str | None, model_factory: ModelFactory, catalog_loader: CatalogLoader) -> SimSetup:
    """Check the inputs, then build the models (each backend once), the judge and the service pool."""
    from agent.llm import LLMError
    from agent.prompts import PromptError, load_prompt
    from conversation.settings import Settings
    from evals.llm_cache import ResponseCache
    from evals.sim_cases import SimCaseError, load_cases
    from evals.simulators.judge import LLMJudge

    settings = Settings()
    agent_spec = backend or settings.llm_backend
    sim_spec = agent_spec if simulator_backend == "same" else simulator_backend
    judge_spec = ("none" if sim_spec in NO_MODEL else sim_spec) if judge_backend == "same" else judge_backend
    try:
        case_list = load_cases(cases)
        for prompt_id in prompts:
            load_prompt(prompt_id)
    except (SimCaseError, PromptError) as exc:
        _fail(str(exc))
    agent_settings = _agent_settings(settings, agent_spec, mode)
    store = None if no_cache else ResponseCache(cache or Path(settings.data_dir) / "llm-cache.sqlite3")
    pool = ModelPool(settings, store, model_factory=model_factory, status=err.status)
    try:
        agent_model, sim_model, judge_model = pool.get(agent_spec), pool.get(sim_spec), pool.get(judge_spec)
    except (LLMError, ValueError) as exc:
        _fail(str(exc))
    name = name or cases.stem
    knobs = {k: getattr(agent_settings, k) for k in KNOBS}
    baseline = _agent_settings(Settings.model_construct(), agent_spec, mode)  # defaults only, same backend
    tag = run_tag(cases, {"agent": agent_spec, "simulator": sim_spec, "judge": judge_spec, "mode": mode.value,
                          "prompts": [*prompts, agent_settings.rerank_prompt], "max_turns": max_turns,
                          "catalog": catalog, "knobs": list(knobs.values())})
    return SimSetup(name=name, cases_file=cases, cases=case_list, specs=(agent_spec, sim_spec, judge_spec),
                    mode=mode.value, prompts=prompts, max_turns=max_turns, agent_model=agent_model,
                    sim_model=sim_model, judge=LLMJudge(judge_model, prompt_id=prompts[1]) if judge_model else None,
                    services=ServicePool(agent_settings, agent_model, catalog_override=catalog, repo=REPO,
                                         catalog_loader=catalog_loader), store=store,
                    out=Path(settings.data_dir) / "runs" / f"sim-{name}-{tag}.jsonl", knobs=knobs,
                    knob_defaults={k: getattr(baseline, k) for k in KNOBS})


def _resumed(setup: SimSetup, sessions: int, seed: int) -> int:
    """How many of the planned sessions an earlier leg already finished."""
    from evals.sim_runner import read_records, session_plan

    planned = {(c.id, s) for c, s in session_plan(setup.cases, sessions, seed)}
    return sum(1 for key in read_records(setup.out) if key in planned)


def code_version() -> str | None:
    """The commit the code ran at ("+dirty" with uncommitted changes): a replay is exact only on the same code."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def _save_run(results_file: Path, run: dict[str, Any]) -> None:
    """The run's facts (command, wall time, models, cache) beside its results, for a later --compare-to."""
    results_file.with_suffix(".run.json").write_text(jsonlib.dumps(run, indent=2), encoding="utf-8")


def _compare(records: list[dict], earlier: Path, max_turns: int) -> dict[str, Any]:
    from evals.sim_compare import compare_runs

    try:
        check = compare_runs(records, earlier, max_turn=max_turns)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    facts = earlier.with_suffix(".run.json")
    if facts.is_file():
        earlier_run = jsonlib.loads(facts.read_text(encoding="utf-8"))
        if not earlier_run.get("resumed_sessions"):  # a resumed leg's wall time is not the whole run's
            check["earlier_seconds"] = earlier_run.get("seconds")
    verdict = "identical" if check["all_metrics_identical"] and not check["differing_sessions"] else "DIFFERENT"
    err.print(f"compared with {earlier}: {check['identical_sessions']}/{check['matched_sessions']} sessions "
              f"identical; metrics {verdict}")
    return check


def _finish(run: dict[str, Any], records: list[dict], report: Path, as_json: bool) -> None:
    from evals.sim_metrics import sim_metrics
    from evals.sim_report import write_sim_report

    metrics = sim_metrics(records, max_turn=run["max_turns"])
    path = write_sim_report(run, records, report)
    if as_json:
        print(jsonlib.dumps({**run, "metrics": metrics, "report": str(path)}))
        return
    judge = metrics["judge"]
    err.print(f"success {metrics['success_rate']:.3f}  turns {metrics['mean_turns']:.2f}  abandoned "
              f"{metrics['abandonment_rate']:.3f}  reflections {metrics['reflections']} (honoured "
              f"{metrics['reflections_honoured']})  judge {judge}  leaks {metrics['leaks']}  "
              f"wall {run['seconds']:.1f}s")
    err.print(f"report written to {path}")
