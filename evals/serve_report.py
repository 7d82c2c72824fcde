"""The Markdown report of `concierge bench serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

P99_OVERHEAD_TARGET_S = 0.5
OVERHEAD_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000]


def command_line(options: dict[str, Any]) -> str:
    """The exact command that reproduces a run (every option spelled out)."""
    return (f"concierge bench serve --catalog {options['catalog']} --sessions {options['sessions']} "
            f"--turns {options['turns']} --llm-delay {options['llm_delay_s']:g} --concurrency {options['concurrency']} "
            f"--isolation-sessions {options['isolation_sessions']} --sse-sessions {options['sse_sessions']} "
            f"--floor-sessions {options.get('floor_sessions', 0)} "
            f"--turn-threads {options['turn_threads']} --seed {options['seed']}")


def verdicts(result: dict[str, Any]) -> dict[str, bool]:
    """The two targets: load (0 errors, p99 overhead <= 500 ms) and isolation (0 leaks, 0 errors)."""
    load, iso = result["load"], result["isolation"]
    return {
        "load_errors": load["errors"] == 0,
        "load_p99_overhead": load["overhead_s"]["p99"] <= P99_OVERHEAD_TARGET_S,
        "isolation": iso["leaks"] == 0 and iso["errors"] == 0 and iso["sessions_read"] == iso["sessions"],
    }


def overhead_histogram(samples: list[dict[str, Any]], delay_s: float) -> list[tuple[str, int]]:
    """Turns counted per overhead bucket (ms), for a text histogram."""
    overheads = [(s["latency_s"] - s["llm_calls"] * delay_s) * 1000 for s in samples if s["ok"]]
    edges = [float("-inf"), *OVERHEAD_BUCKETS_MS, float("inf")]
    rows = []
    for low, high in zip(edges, edges[1:]):
        label = (f"< {high:g} ms" if low == float("-inf") else f">= {low:g} ms" if high == float("inf")
                 else f"{low:g}-{high:g} ms")
        rows.append((label, sum(low <= x < high for x in overheads)))
    return rows


def _ms(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value == value else "-"  # NaN when a phase had no turns


def _row(name: str, stats: dict[str, float]) -> str:
    cells = " | ".join(_ms(stats[key]) for key in ("p50", "p95", "p99", "max"))
    return f"| {name} | {stats['n']} | {cells} |"


def _tick(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def write_serve_report(result: dict[str, Any], path: Path) -> Path:
    """Write the run as Markdown: targets, definitions, set-up, then one section per phase."""
    lines = [*_summary(result), *_setup(result), *_load(result), *_machine(result), *_streaming(result),
             *_isolation(result), *_server(result)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _summary(result: dict[str, Any]) -> list[str]:
    opts, load, iso, la, ok = (result["options"], result["load"], result["isolation"], result["load_average"],
                               verdicts(result))
    delay = opts["llm_delay_s"]
    return [
        "# Serving under load",
        "",
        f"Measured {result['date']} on a shared {result['machine']['cores']}-core virtual machine "
        f"({result['machine']['cpu']}) that other jobs were using at the same time: 1-minute load average "
        f"{la['start'][0]:.1f} at the start, {la['measuring'][0]:.1f} when measuring began and {la['end'][0]:.1f} at "
        "the end. The load client ran on the same machine as the server, so both competed with those jobs and "
        "with each other for the CPU.",
        "",
        f"Reproduce with: `{command_line(opts)}`.",
        "",
        "| target | measured | result |",
        "|---|---|---|",
        f"| load: {opts['sessions']} sessions x {opts['turns']} turns at once, 0 errors | {load['errors']} errors "
        f"in {load['turns']} turns | {_tick(ok['load_errors'])} |",
        f"| load: p99 overhead over the {delay:g} s LLM <= {P99_OVERHEAD_TARGET_S * 1000:.0f} ms | "
        f"{_ms(load['overhead_s']['p99'])} | {_tick(ok['load_p99_overhead'])} |",
        f"| isolation: {iso['sessions']} sessions with secrets, 0 leaks | {iso['leaks']} leaks, "
        f"{iso['errors']} errors, {iso['sessions_read']} histories read | {_tick(ok['isolation'])} |",
        "",
        *_reading(result),
        *_floor(result),
        "## Definitions",
        "",
        "- **latency**: from sending a turn's request to having its whole response, measured by the client.",
        f"- **overhead** = latency - (LLM calls in the turn's trace x {delay:g} s). Everything the server adds to "
        "the model's time: HTTP, JSON, waiting for a thread, the session lock and store, understanding, the policy.",
        "- The overhead has three parts: **HTTP and queueing** = latency - the turn's own `trace.latency_s` "
        "(time inside `ConversationService`, from taking the session lock); **service work** = `trace.latency_s` - "
        "the time the LLM calls really took (their traces); **LLM sleep overrun** = that LLM time - the nominal "
        "delay, i.e. how late the operating system woke the model's sleeping thread. HTTP and queueing is split "
        "by the `Server-Timing` header that the benchmark's server adds (an outermost ASGI middleware): **in the "
        "app, around the service** = app time - `trace.latency_s` (routing, the session check, waiting for a turn "
        "thread, JSON); **outside the app** = latency - app time (uvicorn, the loopback connection, and the client "
        "reading the response: the client shares the machine and its own event loop).",
        "- Percentiles are nearest-rank over all turns of the phase (p99 of 500 turns is the 495th fastest).",
        "",
    ]


def _reading(result: dict[str, Any]) -> list[str]:
    """What the numbers say, in words (only statements the numbers of this run support)."""
    load = result["load"]
    if not load["turns"]:
        return []
    parts = [f"Per turn, at the median: overhead {_ms(load['overhead_s']['p50'])}, of which the service's own work "
             f"{_ms(load['service_work_s']['p50'])}, the model's sleep ending late {_ms(load['llm_overrun_s']['p50'])} "
             "(turn threads that wake together queue for the process's one GIL, and the machine wakes them late), "
             f"the app around the service {_ms(load['app_before_after_service_s']['p50'])}, and outside the app "
             f"{_ms(load['outside_app_s']['p50'])} (medians of each part; they need not add up)."]
    idle = load.get("idle_sleep_late_s", {})
    if idle.get("n") and idle["p99"] > P99_OVERHEAD_TARGET_S:
        parts.append(f"With the server idle, a thread that only sleeps woke p99 {_ms(idle['p99'])} late on this "
                     f"machine: one wake-up alone took more than the {P99_OVERHEAD_TARGET_S * 1000:.0f} ms budget, "
                     "and a turn has at least four.")
    return [" ".join(parts), ""]


def _floor(result: dict[str, Any]) -> list[str]:
    """The same kind of turns at a tenth of the load, and how much of the time the machine ran a busy thread."""
    floor, spin, opts = result.get("floor", {}), result["load"].get("spin", {}), result["options"]
    lines = []
    if floor and floor.get("turns"):
        lines.append(f"At light load ({opts['floor_sessions']} sessions x {opts['turns']} turns, run just before the "
                     f"load phase on the same server) the overhead was p50 {_ms(floor['overhead_s']['p50'])}, p95 "
                     f"{_ms(floor['overhead_s']['p95'])}, p99 {_ms(floor['overhead_s']['p99'])} ({floor['errors']} "
                     "errors): what this machine adds to a turn when the server is nearly idle.")
    if spin:
        lines.append(f"A thread that did nothing but spin for {spin['seconds']:g} s with the server idle was not run "
                     f"for {spin['share']:.0%} of that time, in {spin['pauses']} pauses of up to "
                     f"{_ms(spin['longest_s'])}: the machine itself stops for stretches that long, whoever is "
                     "waiting on it.")
    return [" ".join(lines), ""] if lines else []


def _setup(result: dict[str, Any]) -> list[str]:
    opts, server, delay = result["options"], result["server"], result["options"]["llm_delay_s"]
    return [
        "## Set-up",
        "",
        "- Server: the real API (`ui.api.create_app`) under uvicorn, one worker, in its own process on 127.0.0.1, "
        f"built by `ui.bench_server:bench_app`; catalog `{server['catalog']}` ({server['items']:,} items); "
        f"sessions in {server['store']} in a temporary folder; the web pages off.",
        f"- Chat model: `DelayedChatModel`, {delay:g} s per call, deterministic text that quotes the user's "
        "message; streamed calls send the first chunk at half the delay. The service runs in graph mode with LLM "
        "phrasing and no LLM re-ranking: one LLM call per turn. LLM calls counted per turn from the traces "
        f"(calls: turns): {_counts(result['load']['llm_calls_per_turn'])}.",
        f"- {opts['turn_threads']} turn threads in the server (`ApiConfig.turn_threads`; its default is 16, which "
        f"at {delay:g} s of LLM per turn allows at most {_rate(16, delay)} turns a second in one process).",
        f"- Rate limits raised out of the way (the client is one address): {server['rate_limits']}. The token "
        "buckets still run, so their cost is in the overhead.",
        f"- Client: one process, `httpx.AsyncClient` with at most {opts['load_concurrency']} connections and an "
        f"`asyncio.Semaphore` of {opts['load_concurrency']} requests in flight ({opts['isolation_concurrency']} in "
        "the isolation phase); a request's time starts once it holds the semaphore. Each session is created, then "
        "sends its turns one after another; all sessions of a phase "
        "start at once. Messages are everyday requests built from the catalog's commonest genres, decades and "
        "tags, answers to the question just asked (yes, no, doesn't matter, ...) or reactions to "
        "recommendations. A warm-up of 2 sessions x 2 turns is not counted.",
        "",
    ]


def _load(result: dict[str, Any]) -> list[str]:
    opts, load, delay = result["options"], result["load"], result["options"]["llm_delay_s"]
    hist = overhead_histogram(result["samples"], delay)
    top = max((n for _, n in hist), default=0) or 1
    return [
        f"## Load: {opts['sessions']} sessions x {opts['turns']} turns",
        "",
        f"{load['turns']} turns in {load['wall_s']:.1f} s: {load['turns_per_s']:.1f} turns/s (at most "
        f"{_rate(opts['sessions'], delay)}/s with {opts['sessions']} sessions whose turns each take {delay:g} s of "
        f"LLM); {load['errors']} errors (non-2xx or exceptions). Actions: {_counts(load['actions'])}.",
        "",
        "| | turns | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|---|",
        _row("latency", load["latency_s"]),
        _row("**overhead**", load["overhead_s"]),
        _row("- HTTP and queueing", load["http_and_queue_s"]),
        _row("  - outside the app: uvicorn, loopback, client", load["outside_app_s"]),
        _row("  - in the app, around the service", load["app_before_after_service_s"]),
        _row("- service work", load["service_work_s"]),
        _row("- LLM sleep overrun", load["llm_overrun_s"]),
        _row("create session (no LLM)", load["create_session_s"]),
        "",
        "Overhead per turn (matplotlib is not installed, so a text histogram):",
        "",
        "| overhead | turns | |",
        "|---|---|---|",
        *[f"| {label} | {n} | {'#' * round(40 * n / top)} |" for label, n in hist],
        "",
    ]


def _machine(result: dict[str, Any]) -> list[str]:
    load = result["load"]
    step = f"{load['sleep_probe_step_s'] * 1000:.0f} ms"
    return [
        "## Where the time goes: the machine",
        "",
        "A JSON turn waits to be woken at least four times: the event loop receiving the request, a turn thread "
        "taking the turn, the model's sleep ending, and the event loop sending the reply. How late this machine "
        f"woke a waiting thread, measured by probes that only sleep {step} at a time:",
        "",
        "| probe | samples | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|---|",
        _row("a thread in the client, server idle (10 s before the load)", load["idle_sleep_late_s"]),
        _row("a thread in the client, during the load", load["sleep_late_s"]),
        _row("a thread in the server, during the load", load["server_thread_late_s"]),
        _row("the server's event loop (a timer), during the load", load["server_loop_late_s"]),
        "",
        f"CPU in the load phase: the server {_cpu(load['server_cpu_s'], load)}, the client "
        f"{_cpu(load['client_cpu_s'], load)}. The same server process idle was charged "
        f"{load['server_idle_cpu_share']:.0%} of one core (this VM's accounting charges even an idle event loop), "
        f"so the CPU per turn is an upper bound. {_machine_cpu(load.get('machine_cpu', {}))}",
        "",
    ]


def _streaming(result: dict[str, Any]) -> list[str]:
    sse, delay = result["sse"], result["options"]["llm_delay_s"]
    return [
        f"## Streaming (SSE): {sse['create_session_s']['n']} sessions x up to 3 turns, after the load phase",
        "",
        f"{sse['turns']} turns, {sse['errors']} errors. Time to first token includes the model's "
        f"{delay / 2:g} s before its first chunk.",
        "",
        "| | turns | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|---|",
        _row("time to first `token` event", sse["ttft_s"]),
        _row("time to the `result` event", sse["latency_s"]),
        _row("overhead (result - LLM time)", sse["overhead_s"]),
        "",
    ]


def _isolation(result: dict[str, Any]) -> list[str]:
    iso = result["isolation"]
    failures = [*iso["leak_examples"], *result["error_examples"], *result.get("server_log_problems", [])]
    return [
        f"## Isolation: {iso['sessions']} sessions at once",
        "",
        "Each session's first message is `my code word is cw<16 random hex digits>, I like <a genre, decade or "
        "tag>`, then it answers one or two more turns. Afterwards every session's history is read with "
        "`GET /v1/sessions/{id}`, and every response body and history is searched for any `cw` + 16-hex token "
        "that is not that session's own secret.",
        "",
        "| check | count |",
        "|---|---|",
        f"| sessions | {iso['sessions']} |",
        f"| turns | {iso['turns']} |",
        f"| errors | {iso['errors']} |",
        f"| histories read | {iso['sessions_read']} |",
        f"| **another session's secret found** | **{iso['leaks']}** |",
        f"| own secret in own history (the check can see secrets) | {iso['own_secret_in_history']} |",
        f"| own secret in own responses (the model quotes the user) | {iso['own_secret_in_responses']} |",
        f"| history holds exactly the messages sent, in order | {iso['history_exactly_as_sent']} |",
        "",
        *(["Failures (client errors, then the server log's warnings and errors):", "",
           *[f"- `{x}`" for x in failures], ""] if failures else []),
    ]


def _server(result: dict[str, Any]) -> list[str]:
    server = result["server"]
    memory = [f"| peak resident memory (VmHWM) | {server['peak_rss_mb']:.0f} MB |",
              f"| resident memory at the end | {server['rss_mb']:.0f} MB |"] if "peak_rss_mb" in server else []
    return ["## Server process", "", "| | |", "|---|---|", *memory,
            f"| catalog | {server['catalog']} ({server['items']:,} items) |", f"| session store | {server['store']} |", ""]


def _cpu(seconds: float, load: dict[str, Any]) -> str:
    per_turn = seconds / load["turns"] * 1000 if load["turns"] else float("nan")
    return f"{seconds:.1f} s ({per_turn:.0f} ms a turn, {seconds / load['wall_s']:.0%} of one core)"


def _machine_cpu(share: dict[str, float]) -> str:
    if not share:
        return ""
    return (f"All cores of the machine together were {share['busy']:.0%} busy in this phase (server, client and "
            f"the other jobs; {share['steal']:.0%} of the time stolen by the host).")


def _rate(turns_at_once: int, delay_s: float) -> str:
    return f"{turns_at_once / delay_s:.0f}" if delay_s > 0 else "unbounded"


def _counts(counts: dict[Any, int]) -> str:
    return ", ".join(f"{key}: {n}" for key, n in counts.items()) or "none"
