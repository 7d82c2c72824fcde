"""`concierge eval sim`'s engine: play simulated users against the real ConversationService, resumably.

Public interface (the A/B runner calls these): `load_cases`, `session_plan`, `run_sim`, `sim_metrics`.
Each finished session is appended to a JSONL file at once (flushed and fsynced), so a crash loses no
finished session; a rerun with the same file skips every (case_id, seed) already there and repeats none.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from conversation.service import ConversationService
from evals.sim_cases import SimCase, SimCaseError, load_cases
from evals.sim_metrics import reflection_honoured, sim_metrics
from evals.simulators import ShownItem, Simulator
from evals.simulators.judge import LLMJudge
from evals.simulators.llm import item_attrs
from retrieval.catalog import Catalog

__all__ = ["MAX_TURNS", "SimCase", "SimCaseError", "load_cases", "read_records", "run_session",
           "run_sim", "session_plan", "sim_metrics"]

MAX_TURNS = 14
ServiceFactory = Callable[[SimCase], ConversationService]
SimulatorFactory = Callable[[SimCase, int, Catalog], Simulator]


def session_plan(cases: Sequence[SimCase], sessions: int, seed: int) -> list[tuple[SimCase, int]]:
    """Session k plays case k mod len(cases) with seed `seed + k // len(cases)` (paired runs share it)."""
    if not cases:
        raise SimCaseError("no cases to play")
    return [(cases[k % len(cases)], seed + k // len(cases)) for k in range(sessions)]


def read_records(path: Path) -> dict[tuple[str, int], dict]:
    """Finished sessions in a results file by (case_id, seed); a torn last line (a crash mid-write) is cut off."""
    if not path.is_file():
        return {}
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with path.open("r+b") as handle:
            handle.truncate(cut)
        data = data[:cut]
    done: dict[tuple[str, int], dict] = {}
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a session record ({exc.msg}); move the file away") from None
            done[(row["case_id"], int(row["seed"]))] = row
    return done


class _Sink:
    """Appends one JSON line per finished session, durably, from any thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def run_sim(
    cases: Sequence[SimCase],
    *,
    service_factory: ServiceFactory,
    simulator_factory: SimulatorFactory,
    sessions: int,
    concurrency: int = 1,
    seed: int = 0,
    out_jsonl: Path,
    judge: LLMJudge | None = None,
    progress: Callable[[int], None] | None = None,
    max_turns: int = MAX_TURNS,
) -> list[dict]:
    """Play (or resume) `sessions` sessions; returns one record per planned session, in plan order.

    `service_factory(case)` gives the service to talk to (it may return one shared, thread-safe service);
    `simulator_factory(case, seed, catalog)` gives a fresh simulated user; `progress(n)` is told of n more
    finished sessions (resumed ones first). A session that raises stops the run after the finished ones
    are saved; rerun to resume.
    """
    plan = session_plan(cases, sessions, seed)
    out_jsonl = Path(out_jsonl)
    done = read_records(out_jsonl)
    todo = [(case, s) for case, s in plan if (case.id, s) not in done]
    if progress is not None and len(plan) > len(todo):
        progress(len(plan) - len(todo))
    sink = _Sink(out_jsonl)

    def play(case: SimCase, session_seed: int) -> None:
        service = service_factory(case)
        simulator = simulator_factory(case, session_seed, service.catalog)
        record = run_session(case, session_seed, service=service, simulator=simulator, judge=judge,
                             max_turns=max_turns)
        sink.write(record)
        done[(case.id, session_seed)] = record
        if progress is not None:
            progress(1)

    try:
        _fan_out(play, todo, concurrency)
    finally:
        sink.close()
    return [done[(case.id, s)] for case, s in plan]


def _fan_out(play: Callable[[SimCase, int], None], todo: list[tuple[SimCase, int]], concurrency: int) -> None:
    """Run sessions on `concurrency` threads; the first error cancels what has not started and is raised."""
    if concurrency <= 1:
        for case, s in todo:
            play(case, s)
        return
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sim") as pool:
        futures = [pool.submit(play, case, s) for case, s in todo]
        finished, _pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in finished if f.exception() is not None]
        if failed:
            for future in futures:
                future.cancel()
            raise failed[0].exception()  # type: ignore[misc]


def run_session(case: SimCase, seed: int, *, service: ConversationService, simulator: Simulator,
                judge: LLMJudge | None = None, max_turns: int = MAX_TURNS) -> dict:
    """One conversation between a simulated user and the service, as a self-contained record."""
    started = time.perf_counter()
    catalog = service.catalog
    tally = _Tally()
    opening = simulator.opening()
    tally.user(opening)
    transcript: list[dict] = [{"role": "user", "text": opening.text}]
    turns: list[dict] = []
    session = service.start()
    text, outcome = opening.text, "max_turns"
    try:
        for turn in range(1, max_turns + 1):
            result = service.respond(session, text)
            tally.agent(result)
            ids = [r.item_id for r in result.action.items]
            asked = str(result.action.attribute) if result.action.kind == "ask" and result.action.attribute else None
            turns.append({"turn": turn, "kind": result.action.kind, "asked": asked, "shown": ids})
            tally.invalid += sum(i not in catalog.items for i in ids)
            transcript.append({"role": "assistant", "text": result.text, "turn": turn, "action": result.action.kind,
                               "asked": asked, "shown": ids})
            shown = [ShownItem(item_id=r.item_id, title=r.title, reason=r.reason) for r in result.action.items]
            reply = simulator.react(result.text, shown)
            tally.user(reply)
            transcript.append({"role": "user", "text": reply.text, "satisfaction": reply.satisfaction,
                               "accepted": reply.accepted_id, "leave": reply.leave})
            if reply.reflection is not None:
                tally.reflections.append({**reply.reflection.model_dump(mode="json"),
                                          "attribute": str(reply.reflection.attribute) if reply.reflection.attribute else None})
            if reply.accepted_id is not None:
                outcome, tally.accepted = "success", reply.accepted_id
                break
            if reply.leave:
                outcome = "abandoned"
                break
            text = reply.text
    finally:
        service.end(session)
    return _record(case, seed, service, simulator, judge, tally, transcript, turns, outcome, started)


class _Tally:
    """Running totals of one session."""

    def __init__(self) -> None:
        self.agent_tokens = self.sim_tokens = self.invalid = self.leaks = self.redactions = self.fallbacks = 0
        self.agent_latency = self.sim_latency = 0.0
        self.sim_fallbacks: list[str] = []
        self.agent_fallback_kinds: dict[str, int] = {}
        self.agent_prompts: set[str] = set()
        self.reflections: list[dict] = []
        self.accepted: str | None = None

    def user(self, reply: Any) -> None:
        self.sim_tokens += reply.tokens
        self.sim_latency += reply.latency_s
        self.leaks += reply.leaks
        self.redactions += reply.redactions
        self.sim_fallbacks.extend(reply.fallbacks)

    def agent(self, result: Any) -> None:
        trace = result.trace
        self.agent_tokens += sum(c.prompt_tokens + c.completion_tokens for c in trace.llm_calls)
        self.agent_prompts.update(c.prompt_id for c in trace.llm_calls)
        self.agent_latency += trace.timed_s()
        self.fallbacks += len(trace.fallbacks)
        for kind in trace.fallbacks:
            self.agent_fallback_kinds[kind] = self.agent_fallback_kinds.get(kind, 0) + 1


def _record(case: SimCase, seed: int, service: ConversationService, simulator: Simulator, judge: LLMJudge | None,
            tally: _Tally, transcript: list[dict], turns: list[dict], outcome: str, started: float) -> dict:
    catalog = service.catalog

    def attrs_of(item_id: str) -> set[str]:
        return {str(a) for a in item_attrs(catalog, item_id)}

    for reflection in tally.reflections:
        reflection["honoured"] = reflection_honoured(reflection, turns, attrs_of)
    verdict = None
    if judge is not None:
        seen = list(dict.fromkeys(i for t in turns for i in t["shown"] if i in catalog.items))
        items = [{"title": catalog.items[i].title, "attributes": sorted(a.split("=", 1)[1] for a in attrs_of(i))}
                 for i in seen]
        verdict = judge.rate(case, transcript, items)
    judge_tokens = verdict.tokens if verdict else 0
    judge_latency = verdict.latency_s if verdict else 0.0
    return {
        "case_id": case.id, "seed": seed, "source": case.source, "persona": case.persona.name,
        "success": outcome == "success", "outcome": outcome, "accepted_id": tally.accepted,
        "hit": None if tally.accepted is None else ("target" if tally.accepted in case.need.target_ids else "acceptable"),
        "turns": len(turns), "abandoned": outcome == "abandoned",
        "reflections": len(tally.reflections),
        "reflections_honoured": sum(bool(r["honoured"]) for r in tally.reflections),
        "reflection_details": tally.reflections,
        "invalid_ids_shown": tally.invalid,
        "judge": verdict.ratings if verdict else None,
        "judge_error": verdict.error if verdict else None,
        "tokens": tally.agent_tokens + tally.sim_tokens + judge_tokens,
        "tokens_by_role": {"agent": tally.agent_tokens, "simulator": tally.sim_tokens, "judge": judge_tokens},
        "latency_s": round(time.perf_counter() - started, 4),
        "latency_by_role": {"agent": round(tally.agent_latency, 4), "simulator": round(tally.sim_latency, 4),
                            "judge": round(judge_latency, 4)},
        "leak_count": tally.leaks, "redactions": tally.redactions,
        "agent_fallbacks": tally.fallbacks, "agent_fallback_kinds": tally.agent_fallback_kinds,
        "simulator_fallbacks": tally.sim_fallbacks,
        "models": {"agent": service.model.name if service.model is not None else "none",
                   "simulator": simulator.model_name, "judge": judge.model_name if judge else None},
        "prompts": {"agent": sorted(tally.agent_prompts), "simulator": simulator.prompt_id,
                    "judge": judge.prompt_id if judge else None},
        "transcript": transcript,
    }
