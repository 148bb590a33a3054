"""Atomic training checkpoints: `RUN_DIR/checkpoint/` holds

    model.safetensors   current weights
    best.safetensors    weights of the best validation epoch so far
    trainer.pt          optimizer state, epoch, early-stopping state (tensors and plain types;
                        read with torch.load(weights_only=True))

A new checkpoint is written into `checkpoint.new/` and swapped in with renames, so a process
killed at any moment leaves either the previous checkpoint or the new one, never a mix.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from jnskr.errors import JnskrError
from jnskr.runs import load_tensors, save_tensors

log = logging.getLogger("jnskr")


class Checkpointer:
    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir) / "checkpoint"
        self.new = Path(run_dir) / "checkpoint.new"
        self.old = Path(run_dir) / "checkpoint.old"

    def save(self, trainer) -> None:
        shutil.rmtree(self.new, ignore_errors=True)
        self.new.mkdir(parents=True)
        save_tensors(self.new / "model.safetensors", dict(trainer.model.state_dict()))
        if trainer.best_weights is not None:
            save_tensors(self.new / "best.safetensors", trainer.best_weights)
        torch.save(trainer.state_dict(), self.new / "trainer.pt")
        shutil.rmtree(self.old, ignore_errors=True)
        if self.dir.exists():
            self.dir.rename(self.old)
        self.new.rename(self.dir)
        shutil.rmtree(self.old, ignore_errors=True)
        log.debug("checkpoint after epoch %d", trainer.state.epoch)

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
        trainer.model.load_state_dict(load_tensors(d / "model.safetensors"))
        if (d / "best.safetensors").is_file():
            trainer.best_weights = load_tensors(d / "best.safetensors")
        trainer.load_state_dict(torch.load(d / "trainer.pt", weights_only=True))
        return trainer.state.epoch

    def remove(self) -> None:
        for d in (self.dir, self.new, self.old):
            shutil.rmtree(d, ignore_errors=True)


def checkpoint_epoch(ckpt: Checkpointer | None) -> int | None:
    """The epoch the latest complete checkpoint was taken after (None: no checkpoint)."""
    if ckpt is None or ckpt.latest() is None:
        return None
    return int(torch.load(ckpt.latest() / "trainer.pt", weights_only=True)["state"]["epoch"])
