"""The training progress bar of the CLI (rich): one bar over every batch of a phase (selection
training, then the refit on all of train), with ``epoch N/total``, the last epoch's loss, the last
validation figure and the ETA of the phase (up to its maximum epochs: early stopping ends sooner).

`make_progress` is what `jnskr train` runs with: the bar on a TTY (not with --quiet), the
falling-validation rule always, and a tracker when asked."""

from __future__ import annotations

import logging
import math

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from jnskr.cli.common import err_console, show_progress
from jnskr.progress import PHASES, FallingWatch, FanOut, shown_metric

log = logging.getLogger("jnskr")


class RichProgress:
    """Implements `jnskr.training.trainer.Progress`."""

    def __init__(self, label: str | None = None, console=None):
        self.label = label
        self.console = console if console is not None else err_console
        self.p: Progress | None = None
        self.phase = -1
        self.valid = ""

    def start(self, done_epochs: int, total_epochs: int, batches_per_epoch: int) -> None:
        self.phase += 1
        self.total_epochs = total_epochs
        self.epoch = done_epochs
        self.per_epoch = max(1, batches_per_epoch)
        self.valid = ""
        self.p = Progress(TextColumn("{task.description}"), BarColumn(bar_width=30), TaskProgressColumn(),
                          TextColumn("loss {task.fields[loss]}{task.fields[valid]}"),
                          TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                          console=self.console, transient=True)
        self.p.start()
        total = max(1, (total_epochs - done_epochs) * self.per_epoch)
        self.task = self.p.add_task(self._desc(), total=total, loss="-", valid="")

    def _desc(self) -> str:
        label = self.label or PHASES[min(self.phase, 1)]
        return f"{label}: epoch {min(self.epoch + 1, self.total_epochs)}/{self.total_epochs}"

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
        loss = record.get("loss")
        fields = {"loss": f"{loss:.4g}"} if isinstance(loss, (int, float)) and math.isfinite(loss) else {}
        done = (self.epoch - self._first_epoch()) * self.per_epoch
        self.p.update(self.task, completed=done, valid=self.valid, description=self._desc(), **fields)

    def _first_epoch(self) -> int:
        return self.total_epochs - round(self.p.tasks[0].total / self.per_epoch)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()
            self.p = None


def make_progress(tracker=None):
    """The CLI's progress: the bar (on a TTY, not --quiet), the falling-validation warning on the
    log, and `tracker` (TensorBoard / MLflow) when given."""
    bar = RichProgress() if show_progress() else None
    return FanOut(bar, FallingWatch(emit=log.warning), tracker)
