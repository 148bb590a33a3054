"""Entry point: `jnskr ...` and `python -m jnskr ...`.

User errors (`JnskrError`) print one line and exit 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import sys

import typer

from rich.markup import escape

from jnskr.cli.common import err_console, setup_logging, tidy_help
from jnskr.errors import JnskrError

app = typer.Typer(
    name="jnskr",
    help="Knowledge-graph-enhanced recommendation trained without negative sampling.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and results; no progress bars."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    setup_logging(quiet=quiet, debug=debug)


_REGISTERED = False


def _register() -> None:
    """Register every command on `app` (command modules define plain functions and never import
    this module)."""
    global _REGISTERED
    if _REGISTERED:
        return
    _REGISTERED = True
    tidy_help()
    from jnskr.cli import data as data_cli
    from jnskr.cli import presets as presets_cli
    from jnskr.cli import report as report_cli
    from jnskr.cli import train as train_cli
    from jnskr.cli import tune as tune_cli
    from jnskr.cli import use as use_cli

    app.command()(train_cli.train)
    app.command()(train_cli.evaluate)
    app.command()(tune_cli.tune)
    app.command()(report_cli.report)
    app.add_typer(presets_cli.app, name="presets", help="The shipped presets: list them; `show NAME` prints one.")
    app.command()(use_cli.recommend)
    app.command()(use_cli.similar)
    app.command("export-embeddings")(use_cli.export_embeddings)
    app.command()(use_cli.serve)
    app.add_typer(data_cli.app, name="data", help="Datasets: list, fetch, import, validate.")
    try:
        from jnskr.cli import kg as kg_cli
    except ImportError:  # the kg package is optional while it is built
        kg_cli = None
    if kg_cli is not None:
        app.add_typer(kg_cli.app, name="kg", help="Non-sampling knowledge-graph embedding: train, evaluate, predict.")


def _click_exceptions():
    """typer >= 0.16 vendors click as `typer._click`; older typer uses click itself."""
    try:
        from typer._click import exceptions as mod
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import exceptions as mod
    return mod


def _types(cx, name: str) -> tuple:
    """typer.Exit/typer.Abort plus click's own class where click is not vendored."""
    found = [getattr(typer, name)]
    if hasattr(cx, name):
        found.append(getattr(cx, name))
    return tuple(found)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this in-process)."""
    cx = _click_exceptions()
    _register()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rc = app(args=args, standalone_mode=False, prog_name="jnskr")
    except JnskrError as exc:
        if "--debug" in args:
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except _types(cx, "Exit") as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _types(cx, "Abort"):
        err_console.print("aborted")
        return 1
    except cx.ClickException as exc:
        exc.show()
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return int(rc) if isinstance(rc, int) else 0


def main() -> None:
    sys.exit(run())
