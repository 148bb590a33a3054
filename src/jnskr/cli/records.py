"""What the CLI writes to stderr, line by line: a user error is one line starting ``error:``
(`jnskr.cli.boundary`); every other line is a log record starting with its level name
(``WARNING ...``, ``INFO ...``), never wrapped, without time or source path.  Python warnings
(from torch, numpy, ...) become such records too."""

from __future__ import annotations

import logging
import warnings

from rich.text import Text

STYLES = {"DEBUG": "dim", "INFO": "cyan", "WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}


class LevelHandler(logging.Handler):
    """Log records on a rich console (above any progress bar): ``LEVEL message``, one line each;
    a message of several lines becomes several records of the same level."""

    def __init__(self, console, level: int = logging.NOTSET):
        super().__init__(level)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            if record.exc_info and record.levelno >= logging.ERROR:
                msg += f" ({record.exc_info[1]!r})"
            for line in msg.splitlines() or [""]:
                self.console.print(Text.assemble((record.levelname, STYLES.get(record.levelname, "")), " ", line),
                                   soft_wrap=True, highlight=False)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def route_warnings(logger: logging.Logger) -> None:
    """Show Python warnings as one-line WARNING records of `logger`."""

    def show(message, category, filename, lineno, file=None, line=None):
        logger.warning("%s: %s", category.__name__, str(message).strip())

    warnings.showwarning = show
