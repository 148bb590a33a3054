"""The refit on the idle core: its epochs run in a background thread, one step behind selection.

Under `train.refit` a run trains twice: selection (on the train part, evaluated on validation)
picks the number of epochs N, then the refit trains a fresh model on all of train for N epochs.
The refit's epoch k does not depend on N (shuffles and dropout are keyed by (seed, epoch)), so it
can run while selection is still going: `Lockstep` lets the refit trainer run epoch k once
selection has finished (and evaluated) its own epoch k, keeps a copy of the refit weights after
the epoch that selection currently rates best, and, when selection ends with best epoch N, runs
on to N if it is not there yet and hands back exactly the weights a sequential refit of N epochs
ends with (tests/training/test_lockstep.py checks bit equality).

On a machine with a free core the refit then costs almost no wall time: each thread does
single-threaded torch work (kernels release the GIL).  `use_lockstep` decides when to use it.

`cancel` (selection failed or was interrupted) stops the thread at its next batch boundary
(`jnskr.stop.boundary`, which the trainer calls between batches and around sweeps): it does not
wait for the refit's epoch under way to end.
"""

from __future__ import annotations

import threading

import torch

from jnskr import stop
from jnskr.threads import usable_cores


def use_lockstep(setting: bool | None, device: torch.device, world: int, room: bool = True) -> bool:
    """`train.refit_parallel` (None: on CPU, in one process, with torch on one thread, a second
    core to use and `room` in memory for a second model)."""
    if setting is not None:
        return bool(setting) and world == 1
    return (device.type == "cpu" and world == 1 and room and torch.get_num_threads() == 1
            and usable_cores() >= 2)


class Lockstep:
    """Runs `trainer` (the refit: no validation) epoch by epoch in a thread, gated by selection.

    `allowed` epochs may run (selection's completed epochs); `best` is selection's best epoch so
    far (the weights after it are kept)."""

    def __init__(self, trainer, allowed: int = 0, best: int = 0):
        self.trainer = trainer
        self.cv = threading.Condition()
        self.allowed, self.best = allowed, best
        self.target: int | None = None
        self.cancelled = False
        self.kept: tuple[int, dict] | None = None
        self.records: list[dict] = []
        self.error: BaseException | None = None
        self.stopping = threading.Event()  # set by `cancel`: `stop.boundary()` raises in the thread
        self.thread = threading.Thread(target=self._run, name="jnskr-refit", daemon=True)

    def start(self) -> "Lockstep":
        self.thread.start()
        return self

    def selection_epoch(self, epoch: int, best: int) -> None:
        """Selection completed `epoch` (and its evaluation); its best epoch is `best`."""
        with self.cv:
            self.allowed, self.best = epoch, best
            self.cv.notify_all()

    def _over(self, k: int) -> bool:
        """Nothing more to run after `k` epochs: cancelled, or selection's best epoch reached."""
        return self.cancelled or (self.target is not None and k >= self.target)

    def _may_run(self, k: int) -> bool:
        """Epoch k + 1 may run: selection has completed it (or it is before the final target)."""
        return k < (self.target if self.target is not None else self.allowed)

    def _run(self) -> None:
        with stop.cancellable(self.stopping):
            self._epochs()

    def _epochs(self) -> None:
        try:
            k = 0
            while True:
                with self.cv:
                    while not (self._over(k) or self._may_run(k)):
                        self.cv.wait()
                    if self._over(k):
                        return
                rec = self.trainer.train_epoch(k)
                k += 1
                with self.cv:
                    self.records.append(rec)
                    if k == self.best or (self.target is not None and k == self.target):
                        self.kept = (k, {n: v.detach().clone() for n, v in self.trainer.model.state_dict().items()})
                    self.cv.notify_all()
        except BaseException as exc:  # re-raised in the caller's thread by `finish`
            self.error = exc

    def finish(self, n: int) -> list[dict]:
        """Selection ended with best epoch `n`: the refit model ends with its weights after `n`
        epochs (the trainer's state says `n` epochs).  -> the refit's records of epochs 1..n."""
        with self.cv:
            self.target = n
            self.cv.notify_all()
        self.thread.join()
        if self.error is not None:
            raise self.error
        if self.kept is None or self.kept[0] != n:
            raise RuntimeError(f"the background refit kept epoch {self.kept and self.kept[0]}, not {n}")
        self.trainer.model.load_state_dict(self.kept[1])
        self.trainer.state.epoch = n
        self.trainer.state.best_epoch = n
        return self.records[:n]

    def cancel(self) -> None:
        """Stop the thread at its next batch boundary, abandoning the epoch under way (nothing to
        do when it never started or ended)."""
        with self.cv:
            self.cancelled = True
            self.stopping.set()
            self.cv.notify_all()
        if self.thread.ident is not None:  # started
            self.thread.join()


__all__ = ["Lockstep", "use_lockstep"]
