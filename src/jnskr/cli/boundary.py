"""The CLI's error boundary: every expected failure becomes one stderr line and an exit code.

* a user error -- `JnskrError`, and the failures of the world outside the code: OS errors
  (a full disk, no permission, a file where a folder should be), undecodable text, YAML and
  safetensors errors, running out of memory -- is one line ``error: <file>: <problem>``, exit 2;
* a usage error of the command line (an unknown option, a missing argument) likewise;
* Ctrl-C / SIGTERM (`jnskr.stop`) is a WARNING record that says what the run folder keeps and
  how to resume, exit 128 + the signal number (130, 143).

Anything else is a bug and keeps its traceback.  `--debug` shows the traceback of user errors
too.  Under torchrun only rank 0 prints the error line (every rank exits with the same code).
"""

from __future__ import annotations

import logging
import shlex
import signal

from rich.markup import escape

from jnskr.cli.common import err_console
from jnskr.errors import JnskrError

log = logging.getLogger("jnskr")


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _os_error(exc: OSError) -> str:
    what = exc.strerror or type(exc).__name__
    if exc.filename is None:
        return what
    target = f" -> {exc.filename2}" if getattr(exc, "filename2", None) else ""
    return f"{exc.filename}{target}: {what}"


def user_error(exc: BaseException) -> str | None:
    """The one-line message of an expected failure, or None for a bug."""
    if isinstance(exc, JnskrError):
        return one_line(exc)
    if isinstance(exc, OSError):
        return one_line(_os_error(exc))
    if isinstance(exc, UnicodeError):
        return one_line(f"not UTF-8 text ({exc})")
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return one_line(f"out of memory ({exc or 'no details'}); smaller sizes or batches need less")
    import yaml

    if isinstance(exc, yaml.YAMLError):
        return one_line(f"not valid YAML ({str(exc).splitlines()[0]})")
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - old safetensors
        SafetensorError = ()  # noqa: N806
    if SafetensorError and isinstance(exc, SafetensorError):
        return one_line(f"not a readable safetensors file ({exc})")
    return None


def usage_error(exc) -> str:
    """A click usage error as one line: the command, the problem, where help is."""
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "jnskr"
    return one_line(f"{path}: {exc.format_message()} (see {path} --help)")


def is_main_rank() -> bool:
    from jnskr.launch import is_main_process

    return is_main_process()


def print_error(message: str) -> None:
    if is_main_rank():
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def report_interrupt(exc: BaseException) -> int:
    """Say what an interruption left (a WARNING record) -> the exit code."""
    signum = getattr(exc, "signum", signal.SIGINT)
    name = signal.Signals(signum).name
    run_dir, epoch = getattr(exc, "run_dir", None), getattr(exc, "epoch", None)
    if getattr(exc, "kept", None):  # what the command keeps, in its own words (jnskr tune's study)
        log.warning("interrupted by %s: %s", name, exc.kept)
    elif run_dir is not None:
        kept = f"its checkpoint holds epoch {epoch}" if epoch is not None else "it has no checkpoint yet"
        log.warning("interrupted by %s: %s is marked interrupted, %s; resume with: jnskr train --resume %s",
                    name, run_dir, kept, shlex.quote(str(run_dir)))
    else:
        log.warning("interrupted by %s", name)
    return 128 + int(signum)
