"""`concierge bench serve`: load and isolation against a real API server whose LLM takes a fixed time.

A bounded async client (httpx with a connection limit, an asyncio.Semaphore on requests in flight) runs
many conversations at once against uvicorn in a subprocess (evals/serve_server.py), then checks that no
session's responses or history contain another session's secret.

Overhead of a turn = its latency at the client - (LLM calls in its trace x the model's fixed delay).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from evals.serve_machine import SleepProbe, busy_share, cpu_ticks, machine, paused_share
from evals.serve_server import DELAY_ENV, THREADS_ENV, ServerProcess
from evals.stats import summarize
from retrieval.catalog import Catalog

COMMAND = "concierge bench serve"
SECRET = re.compile(r"cw[0-9a-f]{16}")  # every isolation secret has this shape, so any one found is caught
RAISED_RATE = str(10**9)  # the benchmark is one client address sending thousands of requests
YES_NO = ["yes", "no", "doesn't matter", "yes please", "not really", "sure", "no thanks", "skip that one"]


@dataclass
class Sample:
    """One request as the client saw it."""

    phase: str
    session: int
    turn: int
    ok: bool
    latency_s: float
    status: int | None = None
    llm_calls: int = 0
    server_s: float = 0.0  # the turn's own trace.latency_s: inside the service, after the session lock
    llm_s: float = 0.0  # time its LLM calls really took (the model's sleep can overrun on a busy machine)
    app_s: float = 0.0  # the server's Server-Timing header: the whole turn inside the ASGI app
    kind: str = ""
    ttft_s: float | None = None
    error: str = ""


@dataclass
class Conversation:
    """What one client session sent and got back (raw bodies, for the isolation check)."""

    index: int
    session_id: str | None = None
    sent: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    view: str = ""
    secret: str = ""


def vocabulary(catalog: Catalog, *, per_type: int = 12) -> dict[str, list[str]]:
    """The commonest genres, decades and tags of the catalog: what the simulated users ask for."""
    vocab = {}
    for kind in ("genre", "decade", "tag"):
        counts = Counter(v for item in catalog.items.values() for v in item.attributes.get(kind, []) if len(v) <= 20)
        if counts:
            vocab[kind] = [value for value, _ in counts.most_common(per_type)]
    if not vocab:
        raise ValueError(f"catalog {catalog.name} has no genre, decade or tag attributes to talk about")
    return vocab


def _mention(rng: random.Random, vocab: dict[str, list[str]]) -> str:
    kind = rng.choice(sorted(vocab))
    value = rng.choice(vocab[kind])
    return f"the {value}" if kind == "decade" else value.lower() if kind == "genre" else value


def opening(rng: random.Random, vocab: dict[str, list[str]]) -> str:
    """A first message stating preferences, in one of several everyday forms."""
    a, b = _mention(rng, vocab), _mention(rng, vocab)
    return rng.choice([f"I'd like something {a} tonight", f"any good {a} films?", f"I'm in the mood for {a} and {b}",
                       f"{a} please, but nothing {b}", f"recommend me a movie, maybe {a}"])


def follow_up(rng: random.Random, vocab: dict[str, list[str]], last: dict[str, Any] | None) -> str:
    """The next message: answers a question, or reacts to recommendations with a new wish."""
    if last is not None and last.get("action", {}).get("kind") == "ask":
        return rng.choice(YES_NO)
    mention = _mention(rng, vocab)
    return rng.choice(["something else", "seen those, any others?", f"more {mention} please",
                       f"maybe with {mention}", f"no {mention}", "none of these"])


def find_leaks(texts: dict[int, str], owners: dict[int, str]) -> list[tuple[int, str]]:
    """(session, secret) for every secret-shaped token in a session's texts that is not its own secret."""
    return [(index, token) for index, text in texts.items() for token in sorted(set(SECRET.findall(text)))
            if token != owners.get(index)]


async def _create(client: httpx.AsyncClient, sem: asyncio.Semaphore, conv: Conversation, phase: str,
                  samples: list[Sample]) -> None:
    async with sem:
        started = time.perf_counter()
        try:
            response = await client.post("/v1/sessions", json={"user_id": f"bench-{phase}-{conv.index}"})
            ok = response.status_code == 201
            conv.session_id = response.json()["session_id"] if ok else None
            samples.append(Sample(f"{phase}:create", conv.index, 0, ok, time.perf_counter() - started,
                                  response.status_code, error="" if ok else response.text[:200]))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            samples.append(Sample(f"{phase}:create", conv.index, 0, False, time.perf_counter() - started,
                                  error=f"{type(exc).__name__}: {exc}"[:200]))


async def _turn_json(client: httpx.AsyncClient, sid: str, text: str, sample: Sample) -> dict[str, Any] | None:
    started = time.perf_counter()
    response = await client.post(f"/v1/sessions/{sid}/messages", json={"text": text})
    sample.latency_s, sample.status = time.perf_counter() - started, response.status_code
    if response.status_code != 200:
        sample.error = response.text[:200]
        return None
    timing = re.search(r"app;dur=([\d.]+)", response.headers.get("server-timing", ""))
    sample.app_s = float(timing.group(1)) / 1000 if timing else float("nan")
    return response.json()


async def _turn_sse(client: httpx.AsyncClient, sid: str, text: str, sample: Sample) -> dict[str, Any] | None:
    """A turn as Server-Sent Events: time to the first `token` event, and to the `result` event."""
    started = time.perf_counter()
    event, result = "", None
    async with client.stream("POST", f"/v1/sessions/{sid}/messages", json={"text": text},
                             headers={"Accept": "text/event-stream"}) as response:
        sample.status = response.status_code
        if response.status_code != 200:
            sample.error = (await response.aread()).decode(errors="replace")[:200]
            return None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
                if event == "token" and sample.ttft_s is None:
                    sample.ttft_s = time.perf_counter() - started
            elif line.startswith("data: ") and event == "result":
                result = json.loads(line.removeprefix("data: "))
                sample.latency_s = time.perf_counter() - started
            elif line.startswith("data: ") and event == "error":
                sample.error = line.removeprefix("data: ")[:200]
    return result


async def _converse(client: httpx.AsyncClient, sem: asyncio.Semaphore, conv: Conversation, messages: Callable,
                    *, turns: int, phase: str, samples: list[Sample], sse: bool = False) -> None:
    """Create a session, then send `turns` messages in sequence, each chosen from the previous result."""
    await _create(client, sem, conv, phase, samples)
    if conv.session_id is None:
        return
    last = None
    for turn in range(1, turns + 1):
        text = messages(turn, last)
        sample = Sample(phase, conv.index, turn, False, 0.0)
        async with sem:
            try:
                last = await (_turn_sse if sse else _turn_json)(client, conv.session_id, text, sample)
            except (httpx.HTTPError, ValueError) as exc:
                last, sample.error = None, f"{type(exc).__name__}: {exc}"[:200]
        if last is None and not sample.error:
            sample.error = "no result"
        if last is not None:
            sample.ok = not sample.error
            sample.llm_calls = len(last["trace"]["llm_calls"])
            sample.llm_s = sum(call["latency_s"] for call in last["trace"]["llm_calls"])
            sample.server_s, sample.kind = last["trace"]["latency_s"], last["action"]["kind"]
            conv.sent.append(text)
            conv.bodies.append(json.dumps(last, ensure_ascii=False))
        samples.append(sample)


def _client(base_url: str, connections: int) -> httpx.AsyncClient:
    # Idle connections are dropped after 2 s, before uvicorn closes them (5 s): reusing one that the server is
    # closing at that moment fails with a ReadError, a race of the client's making, not the server's.
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=2.0)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(300.0))


async def _phase(base_url: str, conversations: list[Conversation], messages: Callable[[Conversation], Callable],
                 *, concurrency: int, turns: Callable[[Conversation], int], phase: str, samples: list[Sample],
                 sse: bool = False) -> float:
    """Run the conversations at once, at most `concurrency` requests in flight; returns the wall time."""
    sem = asyncio.Semaphore(concurrency)
    started = time.perf_counter()
    async with _client(base_url, concurrency) as client:
        await asyncio.gather(*(_converse(client, sem, conv, messages(conv), turns=turns(conv), phase=phase,
                                         samples=samples, sse=sse) for conv in conversations))
    return time.perf_counter() - started


async def _server_probes(url: str) -> dict[str, list[float]]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        response = await client.get("/bench/probes")
        response.raise_for_status()
        return response.json()


def _scripted(vocab: dict[str, list[str]], seed: int, first: str | None = None) -> Callable:
    rng = random.Random(seed)
    return lambda turn, last: (first or opening(rng, vocab)) if turn == 1 else follow_up(rng, vocab, last)


async def _drive(url: str, vocab: dict[str, list[str]], opts: dict[str, Any], log: Callable[[str], None],
                 server_cpu: Callable[[], float]) -> dict:
    samples: list[Sample] = []
    seed, conc = opts["seed"], opts["concurrency"]
    log("warm-up: 2 sessions x 2 turns (not counted)")
    await _phase(url, [Conversation(i) for i in range(2)], lambda c: _scripted(vocab, seed - 1 - c.index),
                 concurrency=2, turns=lambda c: 2, phase="warmup", samples=[])
    log("idle: 10 s of the idle server, for the machine's baseline")
    idle_from = server_cpu()
    with SleepProbe() as idle_probe:  # how late threads wake with the server idle: the machine's own share
        await asyncio.sleep(10)
    idle_share = (server_cpu() - idle_from) / 10  # what the idle server is charged, to set against its CPU under load
    log("spin: 5 s of one busy thread, to see how much of the time this machine runs it at all")
    spin = await asyncio.to_thread(paused_share, 5.0)
    if opts["floor_sessions"]:
        log(f"floor: {opts['floor_sessions']} sessions x {opts['turns']} turns, the same turns at a tenth of the load")
        await _phase(url, [Conversation(i) for i in range(opts["floor_sessions"])],
                     lambda c: _scripted(vocab, seed + 40_000 + c.index), concurrency=opts["floor_sessions"],
                     turns=lambda c: opts["turns"], phase="floor", samples=samples)
    await _server_probes(url)  # resets them
    log(f"load: {opts['sessions']} sessions x {opts['turns']} turns, "
        f"{conc or opts['sessions']} requests in flight at most")
    cpu = (server_cpu(), time.process_time(), cpu_ticks())
    with SleepProbe() as probe:
        load_wall = await _phase(url, [Conversation(i) for i in range(opts["sessions"])],
                                 lambda c: _scripted(vocab, seed + c.index), concurrency=conc or opts["sessions"],
                                 turns=lambda c: opts["turns"], phase="load", samples=samples)
    server_probes = await _server_probes(url)
    load_cpu = {"server_cpu_s": server_cpu() - cpu[0], "client_cpu_s": time.process_time() - cpu[1],
                "server_idle_cpu_share": idle_share, "machine_cpu": busy_share(cpu[2], cpu_ticks()),
                "sleep_late_s": summarize(probe.late_s), "sleep_probe_step_s": probe.step_s,
                "idle_sleep_late_s": summarize(idle_probe.late_s), "spin": spin,
                "server_loop_late_s": summarize(server_probes["loop_late_s"]),
                "server_thread_late_s": summarize(server_probes["thread_late_s"])}
    sse_turns = min(3, opts["turns"])
    if opts["sse_sessions"]:
        log(f"streaming: {opts['sse_sessions']} sessions x {sse_turns} turns over SSE")
        await _phase(url, [Conversation(i) for i in range(opts["sse_sessions"])],
                     lambda c: _scripted(vocab, seed + 10_000 + c.index), concurrency=conc or opts["sse_sessions"],
                     turns=lambda c: sse_turns, phase="sse", samples=samples, sse=True)
    isolation = await _isolation(url, vocab, opts, samples, log)
    return {"samples": samples, "load_wall_s": load_wall, "load_cpu": load_cpu, "isolation": isolation}


async def _isolation(url: str, vocab: dict[str, list[str]], opts: dict[str, Any], samples: list[Sample],
                     log: Callable[[str], None]) -> dict[str, Any]:
    """Each session tells its secret, talks on for one or two turns; then every history is read and searched."""
    n = opts["isolation_sessions"]
    conc = min(opts["concurrency"] or n, n)
    log(f"isolation: {n} sessions, each with its own secret, at most {conc} requests in flight")
    rng = random.Random(opts["seed"] + 20_000)
    convs = [Conversation(i, secret=f"cw{secrets.token_hex(8)}") for i in range(n)]
    first = {c.index: f"my code word is {c.secret}, I like {_mention(rng, vocab)}" for c in convs}
    await _phase(url, convs, lambda c: _scripted(vocab, opts["seed"] + 30_000 + c.index, first[c.index]),
                 concurrency=conc, turns=lambda c: 2 + c.index % 2, phase="isolation", samples=samples)
    sem = asyncio.Semaphore(conc)
    async with _client(url, conc) as client:
        async def read(conv: Conversation) -> None:
            if conv.session_id is not None:
                async with sem:
                    try:
                        response = await client.get(f"/v1/sessions/{conv.session_id}")
                    except httpx.HTTPError:
                        return  # an unread history counts against the check (sessions_read < sessions)
                conv.view = response.text if response.status_code == 200 else ""
        await asyncio.gather(*(read(c) for c in convs))
    return _isolation_verdict(convs)


def _isolation_verdict(convs: list[Conversation]) -> dict[str, Any]:
    leaks = find_leaks({c.index: "\n".join([*c.bodies, c.view]) for c in convs}, {c.index: c.secret for c in convs})
    intact = 0
    for conv in convs:
        view = json.loads(conv.view) if conv.view else None
        users = [t["text"] for t in view["history"] if t["role"] == "user"] if view else None
        intact += users == conv.sent and view["turn"] == len(conv.sent)
    return {
        "sessions": len(convs),
        "sessions_read": sum(bool(c.view) for c in convs),
        "turns": sum(len(c.sent) for c in convs),
        "leaks": len(leaks),
        "leak_examples": [f"session {i} holds {token}" for i, token in leaks[:5]],
        "own_secret_in_history": sum(c.secret in c.view for c in convs),
        "own_secret_in_responses": sum(any(c.secret in body for body in c.bodies) for c in convs),
        "history_exactly_as_sent": intact,
    }


def _stats(samples: list[Sample], phase: str, delay_s: float) -> dict[str, Any]:
    turns = [s for s in samples if s.phase == phase and s.ok]
    return {
        "turns": len(turns),
        "errors": sum(not s.ok for s in samples if s.phase.startswith(phase)),
        "latency_s": summarize([s.latency_s for s in turns]),
        "overhead_s": summarize([s.latency_s - s.llm_calls * delay_s for s in turns]),
        "outside_app_s": summarize([s.latency_s - s.app_s for s in turns if s.app_s == s.app_s]),
        "app_before_after_service_s": summarize([s.app_s - s.server_s for s in turns if s.app_s == s.app_s]),
        "http_and_queue_s": summarize([s.latency_s - s.server_s for s in turns]),
        "service_work_s": summarize([s.server_s - s.llm_s for s in turns]),
        "llm_overrun_s": summarize([s.llm_s - s.llm_calls * delay_s for s in turns]),
        "llm_calls_per_turn": dict(sorted(Counter(s.llm_calls for s in turns).items())),
        "actions": dict(sorted(Counter(s.kind for s in turns).items())),
        "create_session_s": summarize([s.latency_s for s in samples if s.phase == f"{phase}:create" and s.ok]),
    }


def server_env(tmp: Path, catalog: Path, *, delay_s: float, turn_threads: int) -> dict[str, str]:
    """The server's settings: the catalog, SQLite sessions in `tmp`, rate limits raised out of the way."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}
    env.update({
        "CONCIERGE_CATALOG": str(catalog.resolve()), "CONCIERGE_DATA_DIR": str(tmp / "data"),
        "CONCIERGE_SESSION_STORE": f"sqlite:///{tmp / 'sessions.sqlite3'}",
        "CONCIERGE_RATE_CLIENT_PER_MIN": RAISED_RATE, "CONCIERGE_RATE_CLIENT_BURST": RAISED_RATE,
        "CONCIERGE_RATE_SESSION_PER_MIN": RAISED_RATE, "CONCIERGE_RATE_SESSION_BURST": RAISED_RATE,
        "CONCIERGE_WEB_UI": "false", DELAY_ENV: repr(delay_s), THREADS_ENV: str(turn_threads),
        "GRADIO_ANALYTICS_ENABLED": "False",
    })
    return env


def _fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (uvicorn's standard extra brings it): the client should cost the machine little."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_serve_bench(catalog: Path, *, sessions: int = 50, turns: int = 10, llm_delay_s: float = 1.0,
                    concurrency: int = 0, isolation_sessions: int = 200, sse_sessions: int = 10,
                    floor_sessions: int = 5, turn_threads: int = 64, seed: int = 0, start_timeout_s: float = 900.0,
                    log: Callable[[str], None] = lambda _line: None) -> dict[str, Any]:
    """Start the server, run warm-up, load, streaming and isolation phases, stop it; returns the numbers."""
    from retrieval.loaders import load_catalog

    load_start = os.getloadavg()
    opts = {"sessions": sessions, "turns": turns, "concurrency": concurrency, "isolation_sessions": isolation_sessions,
            "sse_sessions": min(sse_sessions, sessions), "floor_sessions": min(floor_sessions, sessions), "seed": seed}
    log(f"loading {catalog} for the users' vocabulary")
    vocab = vocabulary(load_catalog(catalog))
    with tempfile.TemporaryDirectory(prefix="concierge-bench-serve-") as tmp:
        env = server_env(Path(tmp), catalog, delay_s=llm_delay_s, turn_threads=turn_threads)
        server = ServerProcess(env, cwd=Path(tmp))
        try:
            log(f"starting the server on {server.url}")
            ready = server.wait_ready(start_timeout_s)
            load_measured = os.getloadavg()
            with asyncio.Runner(loop_factory=_fast_loop()) as runner:
                out = runner.run(_drive(server.url, vocab, opts, log, server.cpu_s))
            memory = server.memory_mb()
        finally:
            server.stop()
            problems = server.problems()
    samples = out["samples"]
    return {
        "command": COMMAND, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "load_average": {"start": load_start, "measuring": load_measured, "end": os.getloadavg()},
        "options": {**opts, "catalog": str(catalog), "llm_delay_s": llm_delay_s, "turn_threads": turn_threads,
                    "load_concurrency": concurrency or sessions,
                    "isolation_concurrency": min(concurrency or isolation_sessions, isolation_sessions)},
        "server": {"catalog": ready["catalog"], "items": ready["items"], "store": ready["store"], **memory,
                   "rate_limits": f"all four rate settings at {RAISED_RATE} (per minute and burst)"},
        "load": {**_stats(samples, "load", llm_delay_s), "wall_s": out["load_wall_s"], **out["load_cpu"],
                 "turns_per_s": sum(s.ok for s in samples if s.phase == "load") / out["load_wall_s"]},
        "floor": _stats(samples, "floor", llm_delay_s),
        "sse": {**_stats(samples, "sse", llm_delay_s),
                "ttft_s": summarize([s.ttft_s for s in samples if s.phase == "sse" and s.ok and s.ttft_s is not None])},
        "isolation": {**out["isolation"], "errors": sum(not s.ok for s in samples if s.phase.startswith("isolation"))},
        "error_examples": [asdict(s) for s in samples if not s.ok][:5],
        "server_log_problems": problems,
        "samples": [asdict(s) for s in samples if s.phase == "load"],
    }
