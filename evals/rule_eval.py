"""`concierge eval rule`: the multi-round rule-simulator benchmark on UNICORN's LastFM / LastFM*.

Sessions fan out over worker processes (forked after the catalog, graph and ranker are loaded, so they
share them). Per-session results are appended to a JSONL file as they finish, so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, fields, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from agent.graph import ItemAttributeGraph
from agent.policy import PolicyConfig, PopularityScorer, RankerScorer
from conversation.service import ConversationService, ServiceConfig
from evals.rule_sim import LIST_SIZE, MAX_TURNS, SessionResult, rule_metrics, run_session
from retrieval.catalog import Catalog
from retrieval.indexes import open_ranker
from retrieval.loaders import load_catalog

REPO = Path(__file__).resolve().parents[1]
DATASETS = {"lastfm": "lastfm", "lastfm_star": "lastfm_star"}
TUNED = REPO / "evals" / "tuned"


@dataclass(frozen=True)
class RuleSetup:
    """The policy knobs the benchmark tunes on `valid` (everything else is PolicyConfig's default)."""

    temperature: float = 0.1
    recommend_mass: float = 1.01
    recommend_below: int = LIST_SIZE
    max_questions: int = MAX_TURNS
    negative_answers: str = "prune"  # "prune": a "no" removes the items with it; "soft": lowers their scores
    reject_penalty: float = 0.5  # soft: score lost per rejected attribute an item has

    def policy(self) -> PolicyConfig:
        return PolicyConfig(max_questions=self.max_questions, recommend_below=self.recommend_below,
                            recommend_mass=self.recommend_mass, temperature=self.temperature, list_size=LIST_SIZE,
                            ask_types=("tag",), min_support=1, turn_budget=MAX_TURNS,
                            negative_answers=self.negative_answers, reject_penalty=self.reject_penalty)


def tuned_path(dataset: str, negative_answers: str = "prune") -> Path:
    """Where the setup chosen on `valid` is kept: rule-<dataset>.json, or rule-<dataset>-soft.json."""
    return TUNED / (f"rule-{dataset}.json" if negative_answers == "prune" else f"rule-{dataset}-{negative_answers}.json")


def tuned_setup(dataset: str, negative_answers: str = "prune") -> RuleSetup:
    """The setup chosen on `valid` for a dataset and negative-answer variant, else the defaults."""
    path = tuned_path(dataset, negative_answers)
    if not path.is_file():
        return RuleSetup(negative_answers=negative_answers)
    raw = json.loads(path.read_text(encoding="utf-8"))["setup"]
    names = {f.name for f in fields(RuleSetup)}
    return RuleSetup(**{**{k: v for k, v in raw.items() if k in names}, "negative_answers": negative_answers})


def dataset_folder(dataset: str, root: Path) -> Path:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    folder = Path(root) / DATASETS[dataset]
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found: point --data-root at the folder holding lastfm/ and lastfm_star/")
    return folder


@dataclass
class Bench:
    catalog: Catalog
    graph: ItemAttributeGraph
    scorer: RankerScorer


def load_bench(dataset: str, *, root: Path, data_dir: Path) -> Bench:
    """The catalog, its graph, and the ranker trained on `train` only (saved under data_dir)."""
    catalog = load_catalog(dataset_folder(dataset, root))
    graph = ItemAttributeGraph(catalog, types=("tag",))
    ranker = open_ranker(catalog, Path(data_dir), fingerprint=catalog.fingerprint())
    if ranker is None:
        raise ValueError(f"{catalog.name} has no train interactions for the ranker")
    return Bench(catalog, graph, RankerScorer(ranker, graph, PopularityScorer(catalog, graph)))


def make_service(bench: Bench, setup: RuleSetup, *, model=None, mode: str = "graph",
                 planner_prompt: str | None = None) -> ConversationService:
    """The real service over the benchmark catalog; in `llm` mode the planner picks among CPR's actions
    (no phrasing: the rule simulator reads the structured action only)."""
    config = ServiceConfig(policy=setup.policy(), mode=mode, phrase=False)
    if planner_prompt:
        config = replace(config, planner_prompt=planner_prompt)
    service = ConversationService(bench.catalog, model=model, config=config, scorer=bench.scorer)
    service.policy.graph = bench.graph  # share the one graph
    return service


def session_pairs(catalog: Catalog, split: str, *, limit: int | None = None, seed: int = 0) -> list[tuple[str, str]]:
    """(user, target) pairs of a split in file order; a seeded shuffle first when `limit` samples."""
    pairs = [(i.user, i.item) for i in catalog.splits.get(split, [])]
    if not pairs:
        raise ValueError(f"{catalog.name} has no {split!r} split")
    if limit is not None and limit < len(pairs):
        pairs = random.Random(seed).sample(pairs, limit)
    return pairs


_WORKER: dict[str, Any] = {}


def _run_chunk(chunk: Sequence[tuple[str, str]], seed: int) -> list[dict]:
    bench, service = _WORKER["bench"], _WORKER["service"]
    out = []
    for user, target in chunk:
        attrs = bench.graph.attributes_of(bench.graph.row_of[target])
        out.append(run_session(service, user=user, target=target, target_attrs=attrs, seed=seed).as_dict())
    return out


def run_sessions(bench: Bench, setup: RuleSetup, pairs: Sequence[tuple[str, str]], *, seed: int = 0,
                 workers: int = 0, results_file: Path | None = None, chunk: int = 100,
                 on_progress: Callable[[int], None] | None = None, model=None,
                 mode: str = "graph", planner_prompt: str | None = None) -> list[SessionResult]:
    """Run (or resume) the sessions; returns every result in `pairs` order."""
    done = _finished(results_file)
    todo = [p for p in pairs if p not in done]
    if on_progress:
        on_progress(len(pairs) - len(todo))
    _WORKER.update(bench=bench, service=make_service(bench, setup, model=model, mode=mode,
                                                                planner_prompt=planner_prompt))
    sink = results_file.open("a", encoding="utf-8") if results_file is not None else None
    try:
        chunks = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]
        workers = workers or min(os.cpu_count() or 1, 8)
        if workers <= 1 or model is not None or len(chunks) <= 1:
            finished = (_run_chunk(c, seed) for c in chunks)
            for rows in finished:
                _keep(rows, done, sink, on_progress)
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
                futures = [pool.submit(_run_chunk, c, seed) for c in chunks]
                for future in as_completed(futures):
                    _keep(future.result(), done, sink, on_progress)
    finally:
        if sink is not None:
            sink.close()
    return [SessionResult.from_row(done[p]) for p in pairs]


def _finished(results_file: Path | None) -> dict[tuple[str, str], dict]:
    done: dict[tuple[str, str], dict] = {}
    if results_file is not None and results_file.is_file():
        for line in results_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                done[(row["user"], row["target"])] = row
    return done


def finished_pairs(results_file: Path | None) -> set[tuple[str, str]]:
    """The (user, target) pairs a results file already holds a session for."""
    return set(_finished(results_file))


def _keep(rows: list[dict], done: dict, sink, on_progress) -> None:
    for row in rows:
        done[(row["user"], row["target"])] = row
        if sink is not None:
            sink.write(json.dumps(row) + "\n")
    if sink is not None:
        sink.flush()
    if on_progress:
        on_progress(len(rows))


def tune(bench: Bench, pairs: Sequence[tuple[str, str]], *, seed: int = 0, workers: int = 0, rounds: int = 1,
         on_step: Callable[[RuleSetup, dict], None] | None = None,
         negative_answers: str = "prune") -> tuple[RuleSetup, list[dict]]:
    """Coordinate search over the policy knobs on validation sessions, maximising SR@15 + hDCG (success
    first, then how early and how high the target came)."""
    grid: dict[str, tuple] = {
        "recommend_mass": (0.3, 0.5, 0.7, 0.9, 1.01),
        "temperature": (0.02, 0.05, 0.1, 0.2, 0.5),
        "max_questions": (4, 6, 8, 10, MAX_TURNS),
    }
    if negative_answers == "soft":
        grid["reject_penalty"] = (0.1, 0.25, 0.5, 1.0, 2.0)
    best, history = RuleSetup(negative_answers=negative_answers), []
    cache: dict[RuleSetup, dict] = {}

    def score(setup: RuleSetup) -> tuple[float, float]:
        if setup not in cache:
            metrics = rule_metrics(run_sessions(bench, setup, pairs, seed=seed, workers=workers))
            cache[setup] = metrics
            history.append({"setup": asdict(setup), **{k: metrics[k] for k in ("sr5", "sr10", "sr15", "at", "hdcg")}})
            if on_step:
                on_step(setup, metrics)
        m = cache[setup]
        return round(m["sr15"] + m["hdcg"], 6)

    for _round in range(rounds):
        for name, values in grid.items():
            options = [RuleSetup(**{**asdict(best), name: v}) for v in values]
            best = max(options, key=lambda s: (score(s), -abs(getattr(s, name) - getattr(best, name))))
    return best, history


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started
