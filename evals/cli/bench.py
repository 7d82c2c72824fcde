"""`concierge bench ...`: speed measurements that write a Markdown report under reports/."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from evals.cli.retrieval import bench_retrieval

bench_app = typer.Typer(no_args_is_help=True, help="Measure speed and write reports/.")
err = Console(stderr=True)


bench_app.command("retrieval")(bench_retrieval)


@bench_app.callback()
def _bench() -> None:
    """Measure speed (LLM, retrieval, serving) and write reports/."""


@bench_app.command("llm")
def llm(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Repeats; the median is reported.")] = 3,
    prompt_tokens: Annotated[int, typer.Option("--prompt-tokens", min=16, help="Prompt length.")] = 500,
    decode_tokens: Annotated[int, typer.Option("--decode-tokens", min=2, help="Tokens decoded per run.")] = 128,
    report: Annotated[Path, typer.Option("--report", help="Where the Markdown report goes.")] = Path(
        "reports/llm.md"
    ),
) -> None:
    """Embedded LLM speed: load time, prompt tokens/s, decode tokens/s, time to first token."""
    from agent.backends import resolve_model_path
    from agent.llm import LLMError
    from conversation.settings import Settings
    from evals.bench_llm import run_llm_bench, write_llm_report

    settings = Settings()
    try:
        model_path = resolve_model_path(settings)
        result = run_llm_bench(
            model_path,
            n_threads=settings.llm_threads,
            n_ctx=max(settings.llm_context, prompt_tokens + decode_tokens + 8),
            prompt_tokens=prompt_tokens,
            decode_tokens=decode_tokens,
            repeats=repeats,
            catalog=settings.catalog,
        )
    except LLMError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    written = write_llm_report(result, report)
    if as_json:
        print(json.dumps({**result, "report": str(written)}))
        return
    table = Table("metric", "median", title=f"{result['model']['file']} · {result['machine']['n_threads']} threads")
    table.add_row("model load", f"{result['load_s']:.2f} s")
    table.add_row("prompt processing", f"{result['prompt_tokens_per_s']:.3g} tokens/s")
    table.add_row("decode", f"{result['decode_tokens_per_s']:.3g} tokens/s")
    table.add_row(f"time to first token ({result['prompt_tokens']} tokens)", f"{result['ttft_s']:.2f} s")
    Console().print(table)
    err.print(f"report written to {written}")


@bench_app.command("serve")
def serve(
    sessions: Annotated[int, typer.Option("--sessions", min=1, help="Conversations at once in the load phase.")] = 50,
    turns: Annotated[int, typer.Option("--turns", min=1, help="Messages each load session sends in turn.")] = 10,
    llm_delay: Annotated[float, typer.Option("--llm-delay", min=0.0, help="Seconds each LLM call takes.")] = 1.0,
    concurrency: Annotated[int, typer.Option("--concurrency", min=0,
                                             help="Most requests in flight (0: one per session).")] = 0,
    isolation_sessions: Annotated[int, typer.Option("--isolation-sessions", min=1,
                                                    help="Sessions in the isolation check.")] = 200,
    sse_sessions: Annotated[int, typer.Option("--sse-sessions", min=0,
                                              help="Sessions (3 turns each) timed over SSE.")] = 10,
    floor_sessions: Annotated[int, typer.Option("--floor-sessions", min=0, help=(
        "Sessions of a light-load phase run first, the machine's floor for the same turns (0: none)."))] = 5,
    turn_threads: Annotated[int, typer.Option("--turn-threads", min=1, help="Turns the server runs at once.")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated users' messages.")] = 0,
    catalog: Annotated[Path | None, typer.Option("--catalog",
                                                 help="Catalog the server loads (default: CONCIERGE_CATALOG).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    report: Annotated[Path, typer.Option("--report", help="Where the Markdown report goes.")] = Path(
        "reports/serving-load.md"
    ),
) -> None:
    """Serving: load (latency and overhead over a fixed-delay LLM) and session isolation against a real server.

    Exits 1 if any request failed or any session saw another's secret; the latency target is only reported.
    """
    from conversation.settings import Settings
    from evals.bench_serve import run_serve_bench
    from evals.serve_report import verdicts, write_serve_report

    try:
        result = run_serve_bench(catalog or Settings().catalog, sessions=sessions, turns=turns, llm_delay_s=llm_delay,
                                 concurrency=concurrency, isolation_sessions=isolation_sessions,
                                 sse_sessions=sse_sessions, floor_sessions=floor_sessions, turn_threads=turn_threads, seed=seed, log=err.print)
    except (RuntimeError, ValueError, OSError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    written = write_serve_report(result, report)
    passed = verdicts(result)
    summary = {key: value for key, value in result.items() if key != "samples"}
    if as_json:
        print(json.dumps({**summary, "verdicts": passed, "report": str(written)}))
    else:
        load, iso = result["load"], result["isolation"]
        table = Table("", "p50", "p95", "p99", title=f"{load['turns']} turns, {load['errors']} errors, "
                      f"{load['turns_per_s']:.1f} turns/s; isolation: {iso['leaks']} leaks")
        for name, key in (("latency", "latency_s"), ("overhead", "overhead_s")):
            table.add_row(name, *(f"{load[key][p] * 1000:.0f} ms" for p in ("p50", "p95", "p99")))
        Console().print(table)
        err.print(f"report written to {written}")
    if not (passed["load_errors"] and passed["isolation"]):
        err.print("[bold red]failed:[/] requests failed or a session saw another's data (see the report)")
        raise typer.Exit(1)


@bench_app.command("chat")
def chat(
    conversations: Annotated[int, typer.Option("--conversations", min=1, help="Scripted conversations.")] = 10,
    turns: Annotated[int, typer.Option("--turns", min=1, help="Turns in each conversation.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    report: Annotated[Path, typer.Option("--report", help="Where the Markdown report goes (a PNG goes beside it).")] = Path(
        "reports/chat-latency.md"
    ),
) -> None:
    """Chat turn latency with the configured model and settings: p50/p95 over scripted turns, LLM calls per turn."""
    from agent.llm import LLMError
    from conversation.app import build_service
    from conversation.settings import Settings
    from evals.bench_chat import run_chat_bench
    from evals.bench_chat_report import verdicts, write_chat_report
    from retrieval.catalog import CatalogError
    from evals.progress import progress_bar

    settings = Settings()
    try:
        started = time.perf_counter()
        service = build_service(settings, progress=progress_bar)
        startup_s = time.perf_counter() - started
        warm_up_s = service.warm_up()
        with progress_bar(conversations * turns, "scripted chat turns") as advance:
            result = run_chat_bench(service, conversations=conversations, turns=turns, advance=advance)
        result.update(startup_s=startup_s, warm_up_s=warm_up_s)
    except (LLMError, CatalogError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    command = f"concierge bench chat --conversations {conversations} --turns {turns}"
    written = write_chat_report(result, report, command=command)
    if as_json:
        print(json.dumps({**result, "verdicts": verdicts(result), "report": str(written)}))
        return
    table = Table("", "p50", "p95", "max", title=f"{result['turns']} turns, {result['llm_calls_per_turn']:.2f} LLM calls a turn, "
                  f"{result['degraded_turns']} degraded")
    for name, key in (("turn latency", "latency_s"), ("first chunk", "first_chunk_s")):
        table.add_row(name, *(f"{result[key][p]:.2f} s" for p in ("p50", "p95", "max")))
    Console().print(table)
    err.print(f"report written to {written}")
