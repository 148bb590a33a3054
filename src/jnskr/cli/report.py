"""`jnskr report RUN_DIR`: learning curves (PNG) and a short summary of a run (plain function;
`jnskr.cli.main` registers it).

It writes only into a folder jnskr made for a run (`jnskr.outputs.is_run_folder`), and replaces
a ``report.txt`` / PNG only when `jnskr report` wrote it (or with ``--overwrite``); every check
runs before anything is written, and both files are written through a temporary file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from jnskr.cli.common import console, plain
from jnskr.errors import JnskrError

#: how report.txt begins (`jnskr.report.summary`): the mark of a summary `jnskr report` wrote
SUMMARY_MARK = "run        "


def report(
    run_dir: Path = typer.Argument(..., help="A run folder written by `jnskr train`."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where the PNG goes (default: "
                                          "RUN_DIR/report.png)."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write the PNG of the learning curves (needs "
                              "matplotlib)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a report.txt or PNG that `jnskr report` "
                                   "did not write."),
) -> None:
    """Learning curves (validation metric and loss against epoch and seconds) as a PNG, and a summary."""
    from jnskr.outputs import check_file_out, contains, is_run_folder, starts_with
    from jnskr.report import PNG_MARK
    from jnskr.report import plot as write_plot
    from jnskr.report import summary
    from jnskr.runs import atomic_write_text

    if not run_dir.is_dir():
        raise JnskrError(f"{run_dir}: no such run folder")
    if not is_run_folder(run_dir):
        raise JnskrError(f"{run_dir}: not a run folder (no status.json or environment.json written by jnskr); "
                         "jnskr report writes only into run folders")
    if output is not None and output.suffix.lower() != ".png":
        raise JnskrError(f"--output {output}: the learning curves are a PNG; give a path ending in .png")
    txt = check_file_out(run_dir / "report.txt", starts_with(SUMMARY_MARK), "report.txt in", overwrite)
    png = output if output is not None else run_dir / "report.png"
    if plot:
        check_file_out(png, contains(PNG_MARK.encode()), "--output", overwrite,
                       inputs=[(n, run_dir / n) for n in ("log.jsonl", "metrics.json", "config.yaml")])
    text = summary(run_dir)
    atomic_write_text(txt, text + "\n")
    console.print(plain(text), highlight=False, soft_wrap=True)
    if plot:
        out = write_plot(run_dir, png)
        console.print(f"learning curves: {plain(out)}; summary: {plain(txt)}", highlight=False)
