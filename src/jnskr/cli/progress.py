"""The training progress bar of the CLI (rich): one bar over every batch of the run, with
``epoch N/total``, the last loss and validation figure, and the ETA of the whole run."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from jnskr.cli.common import err_console


class RichProgress:
    """Implements `jnskr.training.trainer.Progress`."""

    def __init__(self, label: str = "training"):
        self.label = label
        self.p: Progress | None = None
        self.valid = ""

    def start(self, done_epochs: int, total_epochs: int, batches_per_epoch: int) -> None:
        self.total_epochs = total_epochs
        self.epoch = done_epochs
        self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("batches  loss {task.fields[loss]}{task.fields[valid]}"),
                          TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                          console=err_console, transient=True)
        self.p.start()
        total = max(1, (total_epochs - done_epochs) * max(1, batches_per_epoch))
        self.task = self.p.add_task(self._desc(), total=total, loss="-", valid="")

    def _desc(self) -> str:
        return f"{self.label}: epoch {min(self.epoch + 1, self.total_epochs)}/{self.total_epochs}"

    def batch(self, epoch: int, loss: float) -> None:
        if self.p is not None:
            self.epoch = epoch
            self.p.update(self.task, advance=1, loss=f"{loss:.4g}", description=self._desc())

    def epoch_end(self, record: dict) -> None:
        if self.p is None:
            return
        valid = record.get("valid")
        if valid:
            key = next((k for k in ("recall@20", "recall@10") if k in valid), None)
            if key is not None:
                self.valid = f"  valid {key} {valid[key]:.4f}"
        self.epoch = record["epoch"]
        self.p.update(self.task, valid=self.valid, description=self._desc())

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()
            self.p = None
