"""The `concierge` command line."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from conversation.cli_ab import ab
from conversation.cli_bench import bench_app
from conversation.cli_calibrate import eval_calibrate
from conversation.cli_catalog import catalog_app
from conversation.cli_retrieval import bench_retrieval, eval_retrieval, train_ranker
from conversation.cli_nlu import eval_nlu
from conversation.cli_redial import eval_redial
from conversation.cli_rule import eval_rule
from conversation.cli_serve import serve
from conversation.cli_sim import eval_sim

app = typer.Typer(
    name="concierge",
    help="Concierge: a conversational recommender you can chat with, evaluate, and embed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(catalog_app, name="catalog", help="Validate a catalog or print its statistics.")
app.add_typer(bench_app, name="bench", help="Measure speed (LLM, retrieval) and write reports/.")
eval_app = typer.Typer(no_args_is_help=True, help="Measure quality and write reports/.")
app.add_typer(eval_app, name="eval", help="Measure quality (retrieval, conversations) and write reports/.")
eval_app.command("retrieval")(eval_retrieval)
eval_app.command("rule")(eval_rule)
eval_app.command("nlu")(eval_nlu)
eval_app.command("sim")(eval_sim)
eval_app.command("calibrate")(eval_calibrate)
eval_app.command("redial")(eval_redial)
bench_app.command("retrieval")(bench_retrieval)
app.command("train-ranker")(train_ranker)
app.command("serve")(serve)
app.command("ab")(ab)
err = Console(stderr=True)


def _settings():
    from conversation.settings import Settings

    return Settings()


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _service(settings, **kwargs):
    from agent.llm import LLMError
    from conversation.app import build_service
    from retrieval.catalog import CatalogError

    try:
        return build_service(settings, **kwargs)
    except (LLMError, CatalogError, FileNotFoundError) as exc:
        _fail(str(exc))


@app.command()
def config(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Print the effective settings (environment CONCIERGE_*, .env), secrets masked."""
    from conversation.settings import Settings

    data = _settings().masked()
    if as_json:
        print(json.dumps(data))
        return
    table = Table("setting", "value", "environment variable", "what it is")
    for name, value in data.items():
        field = Settings.model_fields[name]
        table.add_row(name, str(value), f"CONCIERGE_{name.upper()}", field.description or "")
    Console().print(table)


@app.command()
def setup() -> None:
    """Prepare everything offline: assemble and verify the local model, load and index the catalog."""
    settings = _settings()
    started = time.perf_counter()
    service = _service(settings, progress=True)
    model = service.model.name if service.model else "none (template replies)"
    err.print(
        f"ready: catalog {service.catalog.name} ({len(service.catalog)} items), model {model}, "
        f"in {time.perf_counter() - started:.1f}s"
    )


@app.command()
def ask(
    text: Annotated[str, typer.Argument(help="What you are looking for, in your own words.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the TurnResult as JSON.")] = False,
) -> None:
    """Answer one request in the terminal with recommendations (no follow-up questions)."""
    settings = _settings()
    service = _service(settings, max_questions=0)
    session_id = service.start()
    started = time.perf_counter()
    stream = None if as_json else (lambda chunk: (sys.stdout.write(chunk), sys.stdout.flush()))
    result = service.respond(session_id, text, on_token=stream)
    elapsed = time.perf_counter() - started
    if as_json:
        print(result.model_dump_json())
        return
    print()
    flag = " (degraded: LLM unavailable, template reply)" if result.trace.degraded else ""
    err.print(f"[dim]{elapsed:.1f}s, {len(result.trace.llm_calls)} LLM call(s){flag}[/]")


@app.command()
def chat(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Open the Gradio chat UI (single user) on the configured catalog and model."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: works fully offline
    from ui.gradio_app import build_ui

    settings = _settings()
    service = _service(settings)
    err.print(f"[dim]model and indexes warmed up in {service.warm_up():.1f}s[/]")
    demo = build_ui(service)
    demo.queue().launch(
        server_name=host or settings.host, server_port=port or settings.port, share=False, show_error=True
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
