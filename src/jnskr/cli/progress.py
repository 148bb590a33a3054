"""The training progress of the CLI.  On a terminal, a rich bar per phase (selection training,
then the refit on all of train) over the batches up to the phase's expected end (`jnskr.eta`: the
early stop if validation does not improve again, at most the epoch cap), with ``epoch N (early
stop ~M, at most T)``, the last epoch's loss, the last validation figure and the time to that end.
Off a terminal (pipes, nohup, CI), plain lines (`jnskr.progress.LogProgress`, every 30 s between
evaluations).

`make_progress` is what `jnskr train` runs with: the bar or the lines (nothing with --quiet), the
falling-validation rule always, and a tracker when asked."""

from __future__ import annotations

import logging
import math

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from jnskr.cli.common import STATE, err_console, show_progress
from jnskr.eta import StopEstimate, phase_text
from jnskr.progress import PHASES, FallingWatch, FanOut, LogProgress, shown_metric

log = logging.getLogger("jnskr")


class RichProgress:
    """Implements `jnskr.training.trainer.Progress`."""

    def __init__(self, label: str | None = None, console=None):
        self.label = label
        self.console = console if console is not None else err_console
        self.p: Progress | None = None
        self.phase = -1
        self.valid = ""
        self.stop = StopEstimate()

    def start(self, done_epochs: int, total_epochs: int, batches_per_epoch: int) -> None:
        self.phase += 1
        self.stop.reset(exact=self.phase > 0)
        self.total_epochs = total_epochs
        self.epoch = self.first = done_epochs
        self.per_epoch = max(1, batches_per_epoch)
        self.valid = ""
        eta = "ETA" if self.stop.known else "ETA ≤"  # to the expected end, or only a bound: the cap
        self.p = Progress(TextColumn("{task.description}"), BarColumn(bar_width=30), TaskProgressColumn(),
                          TextColumn("loss {task.fields[loss]}{task.fields[valid]}"),
                          TimeElapsedColumn(), TextColumn(eta), TimeRemainingColumn(),
                          console=self.console, transient=True)
        self.p.start()
        self.task = self.p.add_task(self._desc(), total=self._total(), loss="-", valid="")

    def _total(self) -> int:
        """Batches from the phase's first epoch to its expected end."""
        return max(1, (max(self.stop.end(self.total_epochs), self.epoch) - self.first) * self.per_epoch)

    def _desc(self) -> str:
        label = self.label or PHASES[min(self.phase, 1)]
        return phase_text(label, min(self.epoch + 1, self.total_epochs), self.total_epochs, self.stop)

    def batch(self, epoch: int, loss: float) -> None:
        """One batch (or sweep) done.  The loss shown stays the last finished epoch's, as in the
        epoch lines of the log: a batch's loss is on another scale (a share of the epoch's, or the
        first-order part of an als sweep)."""
        if self.p is not None:
            self.epoch = epoch
            self.p.update(self.task, advance=1, description=self._desc())

    def epoch_end(self, record: dict) -> None:
        if self.p is None:
            return
        valid = record.get("valid")
        metric = shown_metric(valid)
        if metric is not None:
            self.valid = f"  validation {metric} {valid[metric]:.4f}"
        self.epoch = record["epoch"]
        self.stop.see(record)
        loss = record.get("loss")
        fields = {"loss": f"{loss:.4g}"} if isinstance(loss, (int, float)) and math.isfinite(loss) else {}
        done = (self.epoch - self.first) * self.per_epoch
        self.p.update(self.task, total=self._total(), completed=done, valid=self.valid, description=self._desc(),
                      **fields)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()
            self.p = None


def make_progress(tracker=None):
    """The CLI's progress: the bar on a terminal, plain log lines elsewhere (`LogProgress`; neither
    with --quiet), the falling-validation warning on the log, and `tracker` (TensorBoard / MLflow)
    when given."""
    shown = RichProgress() if show_progress() else None if STATE["quiet"] else LogProgress()
    return FanOut(shown, FallingWatch(emit=log.warning), tracker)
