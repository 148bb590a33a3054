"""Shared CLI plumbing: console, logging setup, user-error handling."""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.logging import RichHandler

console = Console()
err_console = Console(stderr=True)

STATE = {"debug": False, "quiet": False}


def setup_logging(quiet: bool = False, debug: bool = False) -> None:
    STATE["quiet"] = quiet
    STATE["debug"] = debug
    logger = logging.getLogger("jnskr")
    logger.handlers.clear()
    level = logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO)
    logger.setLevel(level)
    handler = RichHandler(console=err_console, show_path=False, show_time=False, markup=False)
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.propagate = False


def show_progress() -> bool:
    """Progress bars only on a TTY and when not --quiet."""
    return (not STATE["quiet"]) and sys.stderr.isatty()
