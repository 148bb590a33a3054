"""Entry point: `jnskr ...` and `python -m jnskr ...`.

User errors print one line and exit 2 (`jnskr.cli.boundary`); `--debug` shows the traceback.
"""

from __future__ import annotations

import sys

import typer

from jnskr.cli.boundary import print_error, report_interrupt, usage_error, user_error
from jnskr.cli.common import setup_logging, tidy_help
from jnskr.stop import Interrupted, handle_signals

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
        with handle_signals(), tidy_help():  # Ctrl-C / SIGTERM: a clean stop (jnskr.stop); jnskr's help text
            rc = app(args=args, standalone_mode=False, prog_name="jnskr")
    except (KeyboardInterrupt, Interrupted) as exc:
        return report_interrupt(exc)
    except _types(cx, "Exit") as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _types(cx, "Abort") as exc:  # click's word for a KeyboardInterrupt or an EOF at a prompt
        if isinstance(exc.__cause__, KeyboardInterrupt):
            return report_interrupt(exc.__cause__)
        print_error("aborted")
        return 1
    except cx.ClickException as exc:
        print_error(usage_error(exc))
        return 2
    except Exception as exc:  # the boundary (jnskr.cli.boundary): expected failures -> one line
        message = user_error(exc)
        if message is None or "--debug" in args:
            raise
        print_error(message)
        return 2
    return int(rc) if isinstance(rc, int) else 0


def main() -> None:
    sys.exit(run())
