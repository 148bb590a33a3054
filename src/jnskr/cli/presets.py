"""`jnskr presets`: the shipped presets with one-line descriptions; `jnskr presets show NAME`
prints one as YAML with its comments (a starting point for `--config FILE`)."""

from __future__ import annotations

import typer
from rich.table import Table

from jnskr.cli.common import console, plain
from jnskr.errors import JnskrError

app = typer.Typer(help="The shipped presets: list them, show one.", no_args_is_help=False,
                  invoke_without_command=True, add_completion=False)


@app.callback(invoke_without_command=True)
def list_presets(ctx: typer.Context) -> None:
    """List the presets with one-line descriptions."""
    if ctx.invoked_subcommand is not None:
        return
    from jnskr import presets
    from jnskr.config import preset_dict

    t = Table(title="presets (jnskr train --preset NAME; jnskr presets show NAME prints one)", title_justify="left")
    t.add_column("name")
    t.add_column("model")
    t.add_column("description")
    for name in presets.names():
        t.add_row(plain(name), plain(preset_dict(name).get("model", "jnskr")), plain(presets.description(name)))
    console.print(t)
    console.print("`--data PATH` without --config/--preset uses the preset named like the folder, else `default`; "
                  "`jnskr tune` writes a preset file of your own (use it with --config FILE).", highlight=False)


@app.command()
def show(name: str = typer.Argument(..., help="A preset name (see `jnskr presets`).")) -> None:
    """Print a preset as YAML with its comments."""
    from jnskr import presets

    if name not in presets.names():
        raise JnskrError(f"unknown preset {name!r} (presets: {', '.join(presets.names())})")
    typer.echo(presets.text(name), nl=False)
