"""Atomic training checkpoints: `RUN_DIR/checkpoint/` holds

    model.safetensors   current weights
    best.safetensors    weights of the best validation epoch so far
    trainer.pt          optimizer state, epoch, early-stopping state (tensors and plain types;
                        read with torch.load(weights_only=True))

A new checkpoint is written into `checkpoint.new/` (each file by temp-and-rename) and swapped in
with renames, so a process killed at any moment leaves either the previous checkpoint or the new
one, never a mix.  A checkpoint that cannot be read is a one-line `JnskrError` naming the file.

When: `jnskr.pipeline.train` checkpoints after every evaluation, and after any other epoch that
took at least `CHEAP` times as long as writing the previous checkpoint did (`Checkpointer.worth`):
writing then costs at most 1/`CHEAP` of those epochs' time, and a stop at a batch boundary
(`jnskr.stop`), which discards the epoch under way, also redoes only epochs shorter than that.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import torch

from jnskr.errors import JnskrError
from jnskr.runs import atomic_write, load_tensors, save_tensors

log = logging.getLogger("jnskr")

#: an epoch between evaluations is checkpointed when it took CHEAP times as long as the last save
CHEAP = 20.0


class Checkpointer:
    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir) / "checkpoint"
        self.new = Path(run_dir) / "checkpoint.new"
        self.old = Path(run_dir) / "checkpoint.old"
        self.seconds: float | None = None  # how long the last `save` took (None: none yet)

    def worth(self, epoch_seconds: float) -> bool:
        """A checkpoint after an epoch of `epoch_seconds` costs at most 1/CHEAP of it (or no save
        has been timed yet)."""
        return self.seconds is None or epoch_seconds >= CHEAP * self.seconds

    def save(self, trainer) -> None:
        t0 = time.perf_counter()
        shutil.rmtree(self.new, ignore_errors=True)
        self.new.mkdir(parents=True)
        save_tensors(self.new / "model.safetensors", dict(trainer.model.state_dict()))
        if trainer.best_weights is not None:
            save_tensors(self.new / "best.safetensors", trainer.best_weights)
        state = trainer.state_dict()
        atomic_write(self.new / "trainer.pt", lambda tmp: torch.save(state, tmp))
        shutil.rmtree(self.old, ignore_errors=True)
        try:
            if self.dir.exists():
                self.dir.rename(self.old)
            self.new.rename(self.dir)
        except OSError as exc:
            raise JnskrError(f"{self.dir}: cannot save the checkpoint ({exc.strerror or exc})") from None
        shutil.rmtree(self.old, ignore_errors=True)
        self.seconds = time.perf_counter() - t0
        log.debug("checkpoint after epoch %d (%.3fs)", trainer.state.epoch, self.seconds)

    def latest(self) -> Path | None:
        """The complete checkpoint folder, if any (a swap interrupted midway leaves `.old`)."""
        for d in (self.dir, self.old):
            if (d / "trainer.pt").is_file() and (d / "model.safetensors").is_file():
                return d
        return None

    def load(self, trainer) -> int:
        """Restore `trainer` (model, optimizer, loop state).  -> epochs already done."""
        d = self.latest()
        if d is None:
            raise JnskrError(f"{self.dir}: no checkpoint to resume from")
        state = read_trainer_state(d / "trainer.pt")
        best = load_tensors(d / "best.safetensors") if (d / "best.safetensors").is_file() else None
        for name, tensors in (("best.safetensors", best), ("model.safetensors", load_tensors(d / "model.safetensors"))):
            if tensors is None:
                continue
            try:  # the best weights only for their shapes; the current weights last
                trainer.model.load_state_dict(tensors)
            except RuntimeError as exc:
                raise JnskrError(f"{d / name}: does not match config.yaml ({str(exc).splitlines()[0][:200]})") from None
        trainer.best_weights = best
        try:
            trainer.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise JnskrError(f"{d / 'trainer.pt'}: does not match this run ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200]})") from None
        return trainer.state.epoch

    def remove(self) -> None:
        for d in (self.dir, self.new, self.old):
            shutil.rmtree(d, ignore_errors=True)


def read_trainer_state(path: Path) -> dict:
    """The dict of a `trainer.pt` (weights-only loading), checked to hold `state.epoch`."""
    try:
        d = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # pickle, zip and torch errors of a corrupt or foreign file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        if "weights only" in first.lower() or "weights_only" in first:
            first = "corrupt, or holds more than tensors and plain types"
        raise JnskrError(f"{path}: not a readable checkpoint ({first})") from None
    ok = isinstance(d, dict) and isinstance(d.get("state"), dict) and isinstance(d["state"].get("epoch"), int)
    if not ok or not {"optimizer", "history"} <= d.keys():
        raise JnskrError(f"{path}: not a jnskr checkpoint (expected optimizer, history and state.epoch)")
    return d


def best_weights(run_dir: Path) -> tuple[dict, Path, dict]:
    """The best validation weights of model selection in `run_dir`'s checkpoint -> (weights,
    their file, the loop state: epoch, best_epoch, best_valid, ...).  One line when there are none."""
    ckpt = Checkpointer(run_dir)
    d = ckpt.latest()
    if d is None:
        raise JnskrError(f"{ckpt.dir}: no checkpoint (the run stopped before its first one); train it again")
    state = read_trainer_state(d / "trainer.pt")["state"]
    if not (d / "best.safetensors").is_file():
        raise JnskrError(f"{d}: no best weights yet (stopped after epoch {state['epoch']}, before the first "
                         f"evaluation); resume it with `jnskr train --resume {run_dir}`")
    log.info("the best checkpoint of %s: epoch %d of the %d trained (model selection's weights, trained on train "
             "without the validation holdout, not refit)", run_dir, state.get("best_epoch", 0), state["epoch"])
    return load_tensors(d / "best.safetensors"), d / "best.safetensors", state


def checkpoint_epoch(ckpt: Checkpointer | None) -> int | None:
    """The epoch the latest complete checkpoint was taken after (None: no readable checkpoint)."""
    if ckpt is None or ckpt.latest() is None:
        return None
    try:
        return int(read_trainer_state(ckpt.latest() / "trainer.pt")["state"]["epoch"])
    except JnskrError:
        return None
