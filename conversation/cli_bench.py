"""`concierge bench ...`: speed measurements that write a Markdown report under reports/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

bench_app = typer.Typer(no_args_is_help=True, help="Measure speed and write reports/.")
err = Console(stderr=True)


@bench_app.callback()
def _bench() -> None:
    """Measure speed (LLM, retrieval) and write reports/."""


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
