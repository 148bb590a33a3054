"""The training loop: shuffled unit batches, one optimiser step per batch, periodic
evaluation with early stopping, best-epoch weights kept.

Shuffling and dropout are keyed by (seed, epoch): an epoch's batches and masks do not depend
on what ran before it, so a resumed run replays exactly.  Before each batch, and before and after
an exact sweep, the loop calls `jnskr.stop.boundary()`: where a requested stop abandons the epoch
under way (the run resumes from its last checkpoint; see `jnskr.stop`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
from torch import nn

from jnskr import stop
from jnskr.errors import JnskrError
from jnskr.parallel import LocalStrategy
from jnskr.training.optim import Adagrad
from jnskr.training.protocols import Objective, Sweeps

log = logging.getLogger("jnskr")


class TrainingDiverged(JnskrError):
    """The loss became NaN or infinite."""


@dataclass
class TrainState:
    """Plain-typed trainer state (checkpointable with torch.save / weights_only loading)."""

    epoch: int = 0  # epochs completed
    best_score: float = -math.inf
    best_epoch: int = 0
    bad_evals: int = 0
    best_valid: dict = field(default_factory=dict)
    stopped: bool = False

    def to_dict(self) -> dict:
        return dict(epoch=self.epoch, best_score=self.best_score, best_epoch=self.best_epoch,
                    bad_evals=self.bad_evals, best_valid=self.best_valid, stopped=self.stopped)


def make_optimizer(params, name: str, lr: float, initial_accumulator: float):
    """Adagrad with TF1 semantics (accumulator starts at `initial_accumulator`, no epsilon;
    `jnskr.training.optim`, which avoids torch.optim's start-up cost), or torch's Adam.  Param
    groups may carry `weight_decay` (= the L2 gradient λ·θ)."""
    params = list(params)
    if name == "adagrad":
        return Adagrad(params, lr, initial_accumulator)
    if name == "adam":
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")


def epoch_permutation(n: int, seed: int, epoch: int, device=None) -> torch.Tensor:
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch * 7_919) % (2**63 - 1))
    perm = torch.randperm(n, generator=g)
    return perm.to(device) if device is not None else perm


def epoch_batches(n_units: int, batch_size: int, drop_last: bool, seed: int, epoch: int, device=None):
    perm = epoch_permutation(n_units, seed, epoch, device)
    n_full = n_units // batch_size
    stop = n_full * batch_size if drop_last else n_units
    return [perm[i : i + batch_size] for i in range(0, stop, batch_size)]


class Progress(Protocol):
    """What the trainer reports while it runs (the CLI draws a bar; notebooks too)."""

    def start(self, done_epochs: int, total_epochs: int, batches_per_epoch: int) -> None: ...
    def batch(self, epoch: int, loss: float) -> None: ...
    def epoch_end(self, record: dict) -> None: ...
    def close(self) -> None: ...


class Trainer:
    """Runs the epochs.  `validate()` returns a metrics dict (or None to skip selection)."""

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        *,
        seed: int,
        batch_size: int,
        epochs: int,
        drop_last: bool = False,
        optimizer: str = "adagrad",
        lr: float = 0.05,
        initial_accumulator: float = 1e-8,
        eval_every: int = 5,
        eval_schedule: str = "standard",
        patience: int = 5,
        select_metric: str = "recall@20",
        validate: Callable[[], dict] | None = None,
        strategy=None,
        progress=None,
        on_epoch_end: Callable[["Trainer"], None] | None = None,
        sweeps: Sweeps | None = None,
    ):
        self.model = model
        self.objective = objective
        self.seed = seed
        self.batch_size = batch_size
        self.epochs = epochs
        self.drop_last = drop_last
        self.eval_every = eval_every
        self.eval_schedule = eval_schedule
        self.patience = patience
        self.select_metric = select_metric
        self.validate = validate
        self.strategy = strategy if strategy is not None else LocalStrategy()
        self.progress = progress  # None or an object with start/batch/epoch_end/close (see `Progress`)
        self.on_epoch_end = on_epoch_end  # called after each epoch's record (log, checkpoints)
        self.sweeps = sweeps  # train.solver: als (`protocols.Sweeps`): exact blocks, then first-order steps
        groups = sweeps.param_groups() if sweeps is not None else objective.param_groups()
        groups = [g for g in groups if g["params"]]
        self.optimizer = make_optimizer(groups, optimizer, lr, initial_accumulator) if groups else None
        self.state = TrainState()
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.history: list[dict] = []

    # ------------------------------------------------------------------ steps
    def is_eval_epoch(self, epoch: int) -> bool:
        """`epoch` is 0-based; evaluation comes after training that epoch."""
        if self.eval_schedule == "paper":
            return epoch % self.eval_every == 0  # after 1, 11, 21, ... epochs (docs/spec.md §4, B13)
        return (epoch + 1) % self.eval_every == 0 or epoch + 1 == self.epochs

    def n_batches(self) -> int:
        if self.sweeps is not None and not self.sweeps.first_order:
            return 1
        n = self.objective.n_units
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def train_epoch(self, epoch: int) -> dict:
        self.model.train()
        if self.sweeps is None:
            return self._first_order_epoch(epoch)
        t0 = time.perf_counter()
        stop.boundary()
        try:
            self.sweeps.sweep(epoch)
        except RuntimeError as exc:  # a singular or non-finite system: the weights degenerated
            finite = all(bool(torch.isfinite(p).all()) for p in self.model.parameters())
            if finite and not isinstance(exc, torch.linalg.LinAlgError):
                raise
            raise TrainingDiverged(f"the exact solver failed in sweep {epoch + 1} "
                                   f"({str(exc).splitlines()[0][:120]})") from None
        stop.boundary()
        rec = {"epoch": epoch + 1}
        if self.sweeps.first_order:
            frozen = self.sweeps.exact_params()
            for p in frozen:
                p.requires_grad_(False)
            try:
                rec.update({f"batch_{k}": v for k, v in self._first_order_epoch(epoch).items()
                            if k not in ("epoch", "seconds", "units_per_s")})
            finally:
                for p in frozen:
                    p.requires_grad_(True)
        elif self.progress is not None:
            self.progress.batch(epoch, float("nan"))
        # F costs about half a sweep: computed on the evaluation schedule (a refit too: its loss curve) and at the end
        if self.is_eval_epoch(epoch) or epoch + 1 == self.epochs:
            value = self.sweeps.value()
            if not math.isfinite(value):
                raise TrainingDiverged(f"the objective is {value} after sweep {epoch + 1}")
            rec["loss"] = value
        elif not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise TrainingDiverged(f"the weights are not finite after sweep {epoch + 1}")
        rec["seconds"] = time.perf_counter() - t0
        return rec

    def _first_order_epoch(self, epoch: int) -> dict:
        device = self.model.device
        batches = epoch_batches(self.objective.n_units, self.batch_size, self.drop_last, self.seed, epoch, device)
        sums: dict[str, float] = {}
        t0 = time.perf_counter()
        st = self.strategy
        for b, units in enumerate(batches):
            stop.boundary()  # a requested stop abandons the epoch here (jnskr.stop)
            self.optimizer.zero_grad(set_to_none=True)
            units = st.split_batch(units)  # this rank's share of the global batch
            loss, parts = self.objective(units, epoch, st)
            if not st.all_finite(loss):
                raise TrainingDiverged(f"loss is {float(loss.detach())} at epoch {epoch + 1}, batch {b + 1}")
            loss.backward()
            st.after_backward(self.model)
            self.optimizer.step()
            lv = float(loss.detach())
            sums["loss"] = sums.get("loss", 0.0) + lv
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            if self.progress is not None:
                self.progress.batch(epoch, lv)
        sums = st.sum_values(sums)  # the global loss of the step, as one process would log it
        secs = time.perf_counter() - t0
        n = sum(len(u) for u in batches)
        with torch.no_grad():
            l2 = self.objective.l2()
        if l2 is not None:
            sums["l2_per_batch"] = float(l2)
        return {"epoch": epoch + 1, **sums, "seconds": secs, "units_per_s": n / max(secs, 1e-9)}

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def fit(self) -> TrainState:
        st = self.state
        if self.progress is not None:
            self.progress.start(st.epoch, self.epochs, self.n_batches())
        try:
            self._fit()
        finally:
            if self.progress is not None:
                self.progress.close()
        if self.validate is None:
            st.best_epoch = st.epoch
            self.best_weights = self._snapshot()
        return st

    def _fit(self) -> None:
        st = self.state
        if st.stopped:  # resumed from the checkpoint of an early stop: nothing left to train
            return
        for epoch in range(st.epoch, self.epochs):
            rec = self.train_epoch(epoch)
            st.epoch = epoch + 1
            if self.is_eval_epoch(epoch) and self.validate is not None:
                metrics = self.validate()
                rec["valid"] = metrics
                score = metrics[self.select_metric]
                if score >= st.best_score:
                    st.best_score, st.best_epoch, st.bad_evals = score, epoch + 1, 0
                    st.best_valid = dict(metrics)
                    self.best_weights = self._snapshot()
                else:
                    st.bad_evals += 1
                log.info("epoch %d/%d  loss %.4f  valid %s %.4f  (best %.4f @ %d)  %.2fs", epoch + 1, self.epochs,
                         rec.get("loss", math.nan), self.select_metric, score, st.best_score, st.best_epoch, rec["seconds"])
                if st.bad_evals >= self.patience:
                    st.stopped = True
            else:
                log.debug("epoch %d  loss %.4f  %.2fs", epoch + 1, rec.get("loss", math.nan), rec["seconds"])
            self.history.append(rec)
            if self.progress is not None:
                self.progress.epoch_end(rec)
            if self.on_epoch_end is not None:
                self.on_epoch_end(self, rec)
            if st.stopped:
                log.info("early stop after epoch %d: no improvement in %d evaluations", epoch + 1, self.patience)
                break

    # ------------------------------------------------------------- resumable
    def state_dict(self) -> dict:
        """Optimizer + loop state as tensors and plain types (`torch.load(weights_only=True)`)."""
        return {"optimizer": self.optimizer.state_dict() if self.optimizer is not None else {},
                "state": self.state.to_dict(),
                "history": json.dumps(self.history)}

    def load_state_dict(self, d: dict) -> None:
        if self.optimizer is not None:
            self.optimizer.load_state_dict(d["optimizer"])
        self.state = TrainState(**d["state"])
        self.history = json.loads(d["history"])

    def restore_best(self) -> None:
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
