"""`jnskr report RUN_DIR`: learning curves (PNG) and a short summary of a run (plain function;
`jnskr.cli.main` registers it)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from jnskr.cli.common import console, plain
from jnskr.errors import JnskrError


def report(
    run_dir: Path = typer.Argument(..., help="A run folder written by `jnskr train`."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where the PNG goes (default: "
                                          "RUN_DIR/report.png)."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write the PNG of the learning curves (needs "
                              "matplotlib)."),
) -> None:
    """Learning curves (validation metric and loss against epoch and seconds) as a PNG, and a summary."""
    from jnskr.report import plot as write_plot
    from jnskr.report import summary

    if not run_dir.is_dir():
        raise JnskrError(f"{run_dir}: no such run folder")
    text = summary(run_dir)
    (run_dir / "report.txt").write_text(text + "\n")
    console.print(plain(text), highlight=False, soft_wrap=True)
    if plot:
        out = write_plot(run_dir, output)
        console.print(f"learning curves: {plain(out)}; summary: {plain(run_dir / 'report.txt')}", highlight=False)
