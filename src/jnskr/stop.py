"""Stopping a run cleanly on Ctrl-C (SIGINT) or SIGTERM.

The CLI trains inside `handle_signals()`.  While the epochs of model selection run (inside
`deferred()`), the first signal only asks for a stop: the epoch under way finishes, a checkpoint of
it is saved, and `Interrupted` is raised from the epoch's end.  Anywhere else (loading data, the
refit, the final evaluation), and at a second signal, `Interrupted` is raised at once; the run
folder then keeps its last checkpoint.  `jnskr.pipeline.run` marks the run "interrupted" in
`status.json` either way, and the CLI prints the resume command and exits with 128 + the signal
number (130 for Ctrl-C, 143 for SIGTERM).

Without `handle_signals` (library use) Ctrl-C is Python's KeyboardInterrupt: `run` marks the run
folder the same way and re-raises it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

log = logging.getLogger("jnskr")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A run stopped by a signal.  `run_dir` / `epoch`: the run folder and the epoch its
    checkpoint holds (filled in by the pipeline; None when nothing was written).  Not a
    KeyboardInterrupt: click would turn that into its Abort (and print a blank line)."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.run_dir = None
        self.epoch: int | None = None

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)


class _State:
    installed = False
    deferring = False
    signum: int | None = None


STATE = _State()


def requested() -> int | None:
    """The signal that asked for a stop at the end of the current epoch (None: none)."""
    return STATE.signum if STATE.installed else None


def _handler(signum, frame) -> None:
    if STATE.deferring and STATE.signum is None:
        STATE.signum = signum
        log.warning("%s: stopping after this epoch with a checkpoint (press Ctrl-C again to stop now)",
                    signal.Signals(signum).name)
        return
    STATE.signum = STATE.signum or signum
    raise Interrupted(signum)


@contextlib.contextmanager
def handle_signals():
    """Install the handlers for SIGINT and SIGTERM (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in SIGNALS}
    STATE.installed, STATE.signum, STATE.deferring = True, None, False
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        STATE.installed, STATE.signum, STATE.deferring = False, None, False


@contextlib.contextmanager
def deferred():
    """Within: a first signal waits for the end of the epoch (see the module docstring)."""
    before = STATE.deferring
    STATE.deferring = True
    try:
        yield
    finally:
        STATE.deferring = before
    if STATE.installed and STATE.signum is not None:  # asked while deferring, not yet acted on
        raise Interrupted(STATE.signum)
