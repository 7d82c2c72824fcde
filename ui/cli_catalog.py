"""`concierge catalog validate|stats`: check a catalog and show what it holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from retrieval.catalog import Catalog, CatalogError
from retrieval.loaders import load_catalog

catalog_app = typer.Typer(help="Validate catalogs and show their statistics.", no_args_is_help=True)

PathArgument = Annotated[Path, typer.Argument(help="A catalog folder or items file (.jsonl/.csv).")]


def _load_or_exit(path: Path) -> Catalog:
    try:
        return load_catalog(path)
    except CatalogError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None


@catalog_app.command()
def validate(path: PathArgument) -> None:
    """Load a catalog completely; print a summary, or the first error (file:line) and exit 1."""
    stats = _load_or_exit(path).stats()
    kinds = ", ".join(f"{kind} {count}" for kind, count in stats["attribute_types"].items()) or "none"
    typer.echo(
        f"OK: {stats['items']} items, {stats['attributes']} attribute values ({kinds}), "
        f"{stats['interactions']} interactions, {stats['users']} users"
    )


@catalog_app.command()
def stats(
    path: PathArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Show item, attribute, interaction and split counts."""
    numbers = _load_or_exit(path).stats()
    if as_json:
        typer.echo(json.dumps(numbers, ensure_ascii=False))
        return
    table = Table(title=Text(f"Catalog {numbers['name']}"), show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("source", "items", "attributes", "interactions", "users"):
        value = numbers[key]
        table.add_row(key, Text(f"{value:,}" if isinstance(value, int) else str(value)))
    for kind, count in numbers["attribute_types"].items():
        table.add_row(f"attribute type: {kind}", f"{count:,}")
    for split, count in numbers["splits"].items():
        table.add_row(f"split: {split}", f"{count:,}")
    Console().print(table)
