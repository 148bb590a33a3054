"""The training loop: shuffled unit batches, one optimiser step per batch, periodic
evaluation with early stopping, best-epoch weights kept.

Shuffling and dropout are keyed by (seed, epoch): an epoch's batches and masks do not depend
on what ran before it, so a resumed run replays exactly.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from jnskr.errors import JnskrError

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


def make_optimizer(params, name: str, lr: float, initial_accumulator: float) -> torch.optim.Optimizer:
    """Adagrad with TF1 semantics (accumulator starts at `initial_accumulator`, no epsilon), or
    Adam.  Param groups may carry `weight_decay` (= the L2 gradient λ·θ).  Fused kernels when
    available."""
    params = list(params)
    if name == "adagrad":
        kw = dict(lr=lr, initial_accumulator_value=initial_accumulator, eps=0.0)
        try:
            return torch.optim.Adagrad(params, fused=True, **kw)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.Adagrad(params, foreach=True, **kw)
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


class Trainer:
    """Runs the epochs.  `validate()` returns a metrics dict (or None to skip selection)."""

    def __init__(
        self,
        model: nn.Module,
        objective,
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
        log_path=None,
        progress: bool = False,
        on_epoch_end: Callable[["Trainer"], None] | None = None,
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
        self.log_path = log_path
        self.progress = progress
        self.on_epoch_end = on_epoch_end
        groups = objective.param_groups() if hasattr(objective, "param_groups") else model.parameters()
        self.optimizer = make_optimizer(groups, optimizer, lr, initial_accumulator)
        self.state = TrainState()
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.history: list[dict] = []

    # ------------------------------------------------------------------ steps
    def is_eval_epoch(self, epoch: int) -> bool:
        """`epoch` is 0-based; evaluation comes after training that epoch."""
        if self.eval_schedule == "paper":
            return epoch % self.eval_every == 0  # after 1, 11, 21, ... epochs (spec §4, B13)
        return (epoch + 1) % self.eval_every == 0 or epoch + 1 == self.epochs

    def train_epoch(self, epoch: int) -> dict:
        self.model.train()
        device = next(self.model.parameters()).device
        batches = epoch_batches(self.objective.n_units, self.batch_size, self.drop_last, self.seed, epoch, device)
        sums: dict[str, float] = {}
        t0 = time.perf_counter()
        bar = _Bar(len(batches), f"epoch {epoch + 1}", self.progress)
        comm = getattr(self.model, "comm", None)
        world = getattr(comm, "world", 1)
        for b, units in enumerate(batches):
            self.optimizer.zero_grad(set_to_none=True)
            if world > 1:  # the global batch is split across ranks
                units = units.tensor_split(world)[comm.rank]
            loss, parts = self.objective(units, epoch)
            finite = bool(torch.isfinite(loss))
            if world > 1:
                flag = torch.tensor([0.0 if finite else 1.0], device=loss.device)
                comm.all_reduce(flag)
                finite = float(flag) == 0.0
            if not finite:
                bar.close()
                raise TrainingDiverged(f"loss is {float(loss.detach())} at epoch {epoch + 1}, batch {b + 1}; "
                                       f"the last good weights are kept")
            loss.backward()
            if world > 1:
                comm.finish_grads(self.model)
            self.optimizer.step()
            lv = float(loss.detach())
            sums["loss"] = sums.get("loss", 0.0) + lv
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            bar.advance(len(units), lv)
        bar.close()
        secs = time.perf_counter() - t0
        n = sum(len(u) for u in batches)
        if hasattr(self.objective, "l2"):
            with torch.no_grad():
                sums["l2_per_batch"] = float(self.objective.l2())
        return {"epoch": epoch + 1, **sums, "seconds": secs, "units_per_s": n / max(secs, 1e-9)}

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def fit(self) -> TrainState:
        st = self.state
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
                log.info("epoch %d  loss %.4f  %s %.4f  (best %.4f @ %d)  %.2fs", epoch + 1, rec["loss"],
                         self.select_metric, score, st.best_score, st.best_epoch, rec["seconds"])
                if st.bad_evals >= self.patience:
                    st.stopped = True
            else:
                log.debug("epoch %d  loss %.4f  %.2fs", epoch + 1, rec["loss"], rec["seconds"])
            self.history.append(rec)
            self._write_log(rec)
            if self.on_epoch_end is not None:
                self.on_epoch_end(self)
            if st.stopped:
                log.info("early stop after epoch %d: no improvement in %d evaluations", epoch + 1, self.patience)
                break
        if self.validate is None:
            st.best_epoch = st.epoch
            self.best_weights = self._snapshot()
        return st

    # ------------------------------------------------------------- resumable
    def state_dict(self) -> dict:
        """Optimizer + loop state as tensors and plain types (`torch.load(weights_only=True)`)."""
        return {"optimizer": self.optimizer.state_dict(), "state": self.state.to_dict(),
                "history": json.dumps(self.history)}

    def load_state_dict(self, d: dict) -> None:
        self.optimizer.load_state_dict(d["optimizer"])
        self.state = TrainState(**d["state"])
        self.history = json.loads(d["history"])

    def restore_best(self) -> None:
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)

    def _write_log(self, rec: dict) -> None:
        if self.log_path is None:
            return
        with open(self.log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")


class _Bar:
    """A rich progress bar over batches, shown only when enabled."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.p = None
        if enabled and total > 1:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:.0f} units/s"),
                              TimeRemainingColumn(), transient=True)
            self.p.start()
            self.task = self.p.add_task(label, total=total, loss=0.0, rate=0.0)
            self.t0 = time.perf_counter()
            self.n = 0

    def advance(self, units: int, loss: float) -> None:
        if self.p is None:
            return
        self.n += units
        rate = self.n / max(time.perf_counter() - self.t0, 1e-9)
        self.p.update(self.task, advance=1, loss=loss, rate=rate)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()
            self.p = None
