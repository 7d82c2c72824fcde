"""The `concierge` command line: the product's commands (config, setup, ask, chat, serve, catalog) and the
lab's (eval, bench, ab, train-ranker), registered here because every entry point lives in `ui/`."""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agent.backends import build_chat_model
from evals.cli.ab import ab
from evals.cli.bench import bench_app
from evals.cli.calibrate import eval_calibrate
from evals.cli.nlu import eval_nlu
from evals.cli.redial import eval_redial
from evals.cli.retrieval import eval_retrieval, train_ranker
from evals.cli.rule import eval_rule
from evals.cli.sim import eval_sim
from evals.models import CatalogLoader, ModelFactory
from evals.progress import progress_bar
from retrieval.loaders import load_catalog
from ui.cli_catalog import catalog_app
from ui.cli_serve import serve

err = Console(stderr=True)


def injected(command: Callable[..., Any], **deps: Any) -> Callable[..., Any]:
    """`command` with those of `deps` it takes as keyword parameters bound, and hidden from Typer."""
    signature = inspect.signature(command, eval_str=True)  # Typer needs the Annotated options, not strings
    bound = {k: v for k, v in deps.items() if k in signature.parameters}
    if not bound:
        return command

    def run(*args: Any, **kwargs: Any) -> Any:
        return command(*args, **kwargs, **bound)

    run.__name__, run.__doc__ = command.__name__, command.__doc__
    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for p in signature.parameters.values() if p.name not in bound])
    run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}
    return run


def build_app(*, model_factory: ModelFactory = build_chat_model, catalog_loader: CatalogLoader = load_catalog) -> typer.Typer:
    """The whole command line; the lab's commands get the model factory and catalog loader passed in."""
    deps = {"model_factory": model_factory, "catalog_loader": catalog_loader}
    root = typer.Typer(
        name="concierge",
        help="Concierge: a conversational recommender you can chat with, evaluate, and embed.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    root.add_typer(catalog_app, name="catalog", help="Validate a catalog or print its statistics.")
    root.add_typer(bench_app, name="bench", help="Measure speed (LLM, retrieval) and write reports/.")
    eval_app = typer.Typer(no_args_is_help=True, help="Measure quality and write reports/.")
    root.add_typer(eval_app, name="eval", help="Measure quality (retrieval, conversations) and write reports/.")
    for name, command in (("retrieval", eval_retrieval), ("rule", eval_rule), ("nlu", eval_nlu), ("sim", eval_sim),
                          ("calibrate", eval_calibrate), ("redial", eval_redial)):
        eval_app.command(name)(injected(command, **deps))
    root.command("train-ranker")(train_ranker)
    root.command("serve")(serve)
    root.command("ab")(injected(ab, **deps))
    for command in (config, setup, ask, chat):
        root.command()(command)
    return root


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



def setup() -> None:
    """Prepare everything offline: assemble and verify the local model, load and index the catalog."""
    settings = _settings()
    started = time.perf_counter()
    service = _service(settings, progress=progress_bar)
    model = service.model.name if service.model else "none (template replies)"
    err.print(
        f"ready: catalog {service.catalog.name} ({len(service.catalog)} items), model {model}, "
        f"in {time.perf_counter() - started:.1f}s"
    )



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


app = build_app()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
