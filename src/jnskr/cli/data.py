"""`jnskr data ...`: list, fetch, import and validate datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from jnskr.cli.common import console
from jnskr.errors import JnskrError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

FORMAT_HELP = "kgat, recbole or tsv (default: detected from the files)"


def _check_format(fmt: Optional[str]) -> Optional[str]:
    from jnskr.data.readers import FORMATS

    if fmt is not None and fmt not in FORMATS:
        raise JnskrError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return fmt


def stats_table(title: str, stats: dict) -> Table:
    """A two-column rich table of a dataset's statistics."""
    from jnskr.data.validate import TABLE

    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key, label in TABLE.items():
        if key not in stats:
            continue
        v = stats[key]
        table.add_row(label, f"{v:.6f}" if isinstance(v, float) else f"{v:,}")
    for key, v in stats.items():
        if key not in TABLE:
            table.add_row(key.replace("_", " "), f"{v:,}" if isinstance(v, int) else str(v))
    return table


@app.command("list")
def list_() -> None:
    """Registered and imported datasets, with their status."""
    from jnskr.data.registry import data_dir, list_datasets

    table = Table(title=f"datasets in {data_dir()}", header_style="bold")
    for col in ("name", "kind", "format", "status", "description"):
        table.add_column(col)
    for row in list_datasets():
        table.add_row(row["name"], row["kind"], row["format"], row["status"], row["description"])
    console.print(table)


@app.command("fetch")
def fetch(
    name: str = typer.Argument(..., help="A registered dataset: ml-100k, amazon-book, yelp2018, last-fm."),
    force: bool = typer.Option(False, "--force", help="Download again even when present."),
) -> None:
    """Download a registered dataset into the data folder; print its licence and citations."""
    from jnskr.data.registry import REGISTRY, fetch as do_fetch

    if name not in REGISTRY:
        raise JnskrError(f"unknown dataset {name!r}: registered are {', '.join(REGISTRY)}")
    info = REGISTRY[name]
    console.print(f"[bold]{name}[/]: {info.description}")
    console.print(f"licence: {info.licence}", highlight=False)
    console.print("cite:", highlight=False)
    for c in info.cite:
        console.print(f"  - {c}", highlight=False)
    path = do_fetch(name, force=force)
    console.print(f"fetched into {path}", highlight=False)


@app.command("import")
def import_(
    path: Path = typer.Argument(..., help="A dataset folder or file."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=FORMAT_HELP),  # noqa: A002
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Name to load it by (default: the folder name)."),
) -> None:
    """Read and validate PATH, then store it in the data folder under NAME."""
    from jnskr.data.registry import dataset_dir, import_dataset

    ds = import_dataset(path, _check_format(format), name)
    console.print(stats_table(f"{ds.name} (imported)", ds.stats))
    for w in ds.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(f"imported as {ds.name!r} into {dataset_dir(ds.name)}", highlight=False)


@app.command("validate")
def validate(
    path: str = typer.Argument(..., help="A dataset folder or file (or a dataset name)."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=FORMAT_HELP),  # noqa: A002
) -> None:
    """Check a dataset and print its statistics; exit 0 with only warnings, 2 on errors."""
    from jnskr.data.registry import load_dataset
    from jnskr.data.validate import validate_dataset

    ds = load_dataset(path, _check_format(format), cache=False)
    stats = validate_dataset(ds)
    console.print(stats_table(f"{ds.name}", stats))
    for w in ds.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(f"[green]ok[/]: {len(ds.warnings)} warning(s), no errors", highlight=False)
