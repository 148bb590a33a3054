"""Stopping a run cleanly on Ctrl-C (SIGINT) or SIGTERM.

The CLI trains inside `handle_signals()`.  While the epochs of model selection run (inside
`deferred(prompt=True)`), the first signal only asks for a stop, and training stops at the next
*batch boundary*: `boundary()`, which the trainer calls before each batch of an epoch and around an
exact sweep (and sweep code between its blocks), raises `Interrupted` there.  The epoch under way
is discarded, not saved: half an epoch (an optimiser step on some batches, the user block of a
sweep solved but not the items) is no state a run can continue from, while an epoch replayed from
its start is exact (shuffles and dropout are keyed by (seed, epoch)).  The run folder keeps its
last checkpoint, written after every evaluation and after every epoch that took longer than
`jnskr.training.checkpoint.CHEAP` times the checkpoint's own writing (so the completed epochs a
resume redoes were each short), and `--resume` replays from there to the same result as an
uninterrupted run.  A signal that comes during an evaluation, or after an epoch's last batch, stops at the end of
that epoch, with a checkpoint of it.  Within `deferred(prompt=False)` a first signal stops at the
end of the epoch under way, with a checkpoint of it: under torchrun (every rank stops at the end of
the same epoch).  `jnskr kg train` stops at its batches and exact blocks as model selection does.

Anywhere else (loading data, the refit after selection, the final evaluation), and at a second
signal, `Interrupted` is raised at once; the run folder then keeps its last checkpoint.  A refit
running beside selection in a thread (`jnskr.training.lockstep`) is cancelled at its next batch
boundary (`cancellable`: `boundary()` raises `Cancelled` in that thread).  `jnskr.pipeline.run`
marks the run "interrupted" in `status.json` either way, and the CLI prints the resume command
and exits with 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM).

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


class Cancelled(BaseException):
    """Raised by `boundary()` in a thread whose work was cancelled (`cancellable`).  A
    BaseException, so that no `except Exception` between the boundary and the thread's top swallows
    it."""


class _State:
    installed = False
    deferring = False
    prompt = False  # deferring, and the stop is at the next batch boundary (not the epoch's end)
    signum: int | None = None


STATE = _State()
_LOCAL = threading.local()  # .cancel: the threading.Event of `cancellable` in this thread


def requested() -> int | None:
    """The signal that asked for a stop (at the next batch boundary, or at the end of the
    current epoch); None: none."""
    return STATE.signum if STATE.installed else None


def boundary() -> None:
    """A point between two batches of an epoch, or between two blocks of a sweep, where training
    may stop.  Returns at once (a few attribute reads) unless

    * a signal asked for a stop, in the main thread, within `deferred(prompt=True)`: raises
      `Interrupted` (the trainer does not catch it; the epoch under way is discarded and the run
      folder keeps its last checkpoint), or
    * this thread's work was cancelled (`cancellable`): raises `Cancelled`.

    Callers must not catch either (both are BaseExceptions) and should call it only where the
    epoch's partial work may be dropped: anything already written in place is discarded with it."""
    event = getattr(_LOCAL, "cancel", None)
    if event is not None and event.is_set():
        raise Cancelled()
    if (STATE.prompt and STATE.installed and STATE.signum is not None
            and threading.current_thread() is threading.main_thread()):
        raise Interrupted(STATE.signum)


@contextlib.contextmanager
def cancellable(event: threading.Event):
    """Within, in the calling thread: `boundary()` raises `Cancelled` once `event` is set."""
    before = getattr(_LOCAL, "cancel", None)
    _LOCAL.cancel = event
    try:
        yield
    finally:
        _LOCAL.cancel = before


def _handler(signum, frame) -> None:
    if STATE.deferring and STATE.signum is None:
        STATE.signum = signum
        when = ("at the next batch; the run keeps its last checkpoint" if STATE.prompt
                else "after this epoch with a checkpoint")
        log.warning("%s: stopping %s (press Ctrl-C again to stop now)", signal.Signals(signum).name, when)
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
    STATE.installed, STATE.signum, STATE.deferring, STATE.prompt = True, None, False, False
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        STATE.installed, STATE.signum, STATE.deferring, STATE.prompt = False, None, False, False


@contextlib.contextmanager
def deferred(prompt: bool = False):
    """Within: a first signal only asks for a stop, taken at the next `boundary()` (`prompt`) or at
    the end of the epoch (see the module docstring)."""
    before = STATE.deferring, STATE.prompt
    STATE.deferring, STATE.prompt = True, prompt
    try:
        yield
    finally:
        STATE.deferring, STATE.prompt = before
    if STATE.installed and STATE.signum is not None:  # asked while deferring, not yet acted on
        raise Interrupted(STATE.signum)
