"""Shared CLI plumbing: console, logging setup, user-error handling."""

from __future__ import annotations

import contextlib

import logging
import os
import sys

import typer
from rich.console import Console

from jnskr.cli.records import LevelHandler, route_warnings

console = Console()
err_console = Console(stderr=True)

STATE = {"debug": False, "quiet": False}

#: `--checkpoint` of the commands that use a run (evaluate, recommend, similar, export-embeddings, serve)
CHECKPOINT = typer.Option("final", "--checkpoint", help="final: the finished run's model; best: the best validation "
                          "weights of model selection from the run's checkpoint (also of an interrupted run).")


#: the width of output that is not a terminal (pipes, files, CI logs): lines are never wrapped there
PIPED_WIDTH = 100_000


def set_widths() -> None:
    """Output on a terminal wraps at the terminal's width; piped output (a file, `| less`, CI)
    is never hard-wrapped (rich's default there is 80 columns, which split paths and names),
    and tables take their natural width.  A `COLUMNS` setting is kept (docs generation fixes it)."""
    for c in (console, err_console):
        c.width = None if c.is_terminal or os.environ.get("COLUMNS") else PIPED_WIDTH


def setup_logging(quiet: bool = False, debug: bool = False) -> None:
    STATE["quiet"] = quiet
    STATE["debug"] = debug
    set_widths()
    logger = logging.getLogger("jnskr")
    logger.handlers.clear()
    level = logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO)
    from jnskr.launch import is_main_process

    if not is_main_process():  # torchrun: rank 0 speaks for the run (a left-over RANK alone does not count)
        level, console.quiet = logging.ERROR, True
    logger.setLevel(level)
    handler = LevelHandler(err_console)  # "LEVEL message", one line per record (jnskr.cli.records)
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.propagate = False
    route_warnings(logger)


def show_progress() -> bool:
    """Progress bars only on a TTY and when not --quiet."""
    return (not STATE["quiet"]) and sys.stderr.isatty()


def fixed(value: float, spec: str = ".4f") -> str:
    """`value` in the fixed-point format `spec` (``".4f"``, ``"+.4f"``), without the minus of a
    number that rounds to zero: ``fixed(-0.00001) == "0.0000"``, ``fixed(-1e-6, "+.4f") ==
    "+0.0000"`` (what Python 3.11's ``z`` option does, for 3.10 too)."""
    out = format(value, spec)
    if out.startswith("-") and not out.strip("-0.,%"):
        out = format(0.0, spec)
    return out


@contextlib.contextmanager
def tidy_help():
    """Help text as users read it, while jnskr's command line runs (typer >= 0.2x renders flags as
    ``--quiet <bool>``, which reads like ``--quiet true``, and arguments as ``{run_dir}``): flags show
    no value type, arguments show as ``RUN_DIR``.  typer's classes are patched only inside the block
    and restored on exit, so another typer app in the same process renders as typer does.  Older
    typer already renders both that way; there this does nothing."""
    try:
        from typer import core
    except ImportError:  # pragma: no cover
        yield
        return
    saved: list[tuple[type, str, object]] = []

    def patch(cls, name, value):
        saved.append((cls, name, cls.__dict__.get(name, _ABSENT)))
        setattr(cls, name, value)

    opt, arg = getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)
    if opt is not None and hasattr(opt, "display_type_rich"):
        original = opt.display_type_rich

        def display_type_rich(self, ctx):
            if getattr(self, "is_flag", False):
                return None
            shown = original(self, ctx)
            if getattr(self, "multiple", False) and isinstance(shown, str) and shown.startswith("<list["):
                shown = "<" + shown[len("<list["):].rstrip(">").rstrip("]") + ">"  # repeatable: one value each
            return shown

        patch(opt, "display_type_rich", display_type_rich)
    if arg is not None and isinstance(getattr(arg, "display_name_raw", None), property):
        patch(arg, "display_name_raw",
              property(lambda self: self.metavar if self.metavar is not None else self.name.upper()))
        if hasattr(arg, "_usage_display_name"):
            def _usage_display_name(self) -> str:
                name = self.display_name_raw
                name = name if self.required else f"[{name}]"
                return name + ("..." if self.nargs != 1 else "")

            patch(arg, "_usage_display_name", _usage_display_name)
    try:
        yield
    finally:
        for cls, name, old in reversed(saved):
            if old is _ABSENT:
                delattr(cls, name)
            else:
                setattr(cls, name, old)


_ABSENT = object()


def plain(text) -> str:
    """User text (ids, names, paths, messages) made safe for rich markup: ``[serve]`` stays."""
    from rich.markup import escape

    return escape(str(text))


#: characters that move the cursor, erase, recolour or reorder what a terminal shows: C0/C1
#: controls (ESC, CR, backspace, newlines, ...), Unicode line separators and bidi controls, and
#: lone surrogates (which no terminal encoding can write)
_HIDDEN = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_HIDDEN.update({c: f"\\u{c:04x}" for c in (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F),
                                            *range(0x2066, 0x206A), *range(0xD800, 0xE000))})


def visible(text) -> str:
    """User text (ids, names) for one line of a table or a listing: the characters above as
    visible escapes (ESC -> ``\\x1b``, U+202E -> ``\\u202e``), then `plain` (rich markup)."""
    return plain(str(text).translate(_HIDDEN))
