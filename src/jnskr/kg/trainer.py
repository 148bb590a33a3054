"""Training: first-order mini-batch steps on F, closed-form block steps, selection on validation.

Solvers (``train.solver``):

* ``adagrad`` / ``adam``: each epoch shuffles T⁺ and takes one step per batch on F_B
  (`Objective.batch`), whose positive part covers the batch and whose all-triples part uses the
  whole tables (scaled by |B|/|T⁺|, so an epoch's batch objectives sum to F).
* ``als``: each sweep replaces every exact table (`ModelSpec.exact_roles`) by its exact minimiser
  (`jnskr.kg.solver`); tables that play two roles (the entity table of DistMult and ComplEx) get
  one epoch of Adagrad steps first.  CP is solved block by block: heads, relations, tails.

Every ``eval_every`` epochs the filtered validation MRR (rule ``eval.select_rule``) decides the
best epoch; ``patience`` evaluations without improvement stop training.  The test set is only
evaluated once, at the selected epoch.

`KGTrainer` is resumable the way `jnskr.training.trainer.Trainer` is: its tables, best tables and
`state_dict` (optimizer, loop state, history, the shuffling generator; tensors and plain types)
are what `jnskr.training.checkpoint.Checkpointer` saves and restores, and a trainer restored from
the checkpoint of epoch e trains epochs e+1, ... exactly as the uninterrupted run did.  It reports
to the progress objects of `jnskr train` (`jnskr.progress`: start / batch / epoch_end / close,
the early-stopping ETA of `jnskr.eta`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import Tensor

from jnskr import stop
from jnskr.errors import JnskrError
from jnskr.kg.checks import check_before_training
from jnskr.kg.config import KGConfig
from jnskr.kg.data import KGData
from jnskr.kg.evaluate import KnownTriples, evaluate_ranking
from jnskr.kg.models import KGModel, get_model
from jnskr.kg.objective import Objective, negative_weights, with_reciprocals
from jnskr.kg.solver import solve_block

__all__ = ["FitResult", "KGTrainer", "KGState", "fit", "evaluate_model", "build_objective", "thread_scope"]

log = logging.getLogger("jnskr")


@dataclass
class FitResult:
    model: KGModel
    metrics: dict
    history: list[dict] = field(default_factory=list)


def build_objective(cfg: KGConfig, data: KGData) -> Objective:
    """F of `cfg` on `data`'s training triples (reciprocals added when configured)."""
    spec = get_model(cfg.model)
    R = data.n_relations
    pos = with_reciprocals(data.train, R) if cfg.reciprocal else data.train
    n_rel_rows = 2 * R if cfg.reciprocal else R
    dtype = getattr(torch, cfg.dtype)
    a, b, g = negative_weights(pos, data.n_entities, n_rel_rows, total=cfg.loss.neg_total, head=cfg.loss.neg_head,
                               relation=cfg.loss.neg_relation, tail=cfg.loss.neg_tail, beta=cfg.loss.neg_beta,
                               dtype=dtype)
    return Objective(spec, pos, cfg.loss.c_pos, a, b, g, reg=cfg.reg.norm, lam=cfg.reg.weight,
                     weighting=cfg.reg.weighting)


def evaluate_model(model: KGModel, data: KGData, splits: tuple[str, ...] = ("valid", "test"),
                   memory_mb: float = 512.0, known: KnownTriples | None = None) -> dict:
    """{split: {"kept": metrics, "dropped": metrics}} of filtered ranking on `data`'s splits."""
    if known is None:
        known = KnownTriples(torch.cat([data.train, data.valid, data.test]), data.n_entities, data.n_relations)
    seen = data.seen_in_train()
    return {s: evaluate_ranking(model.score_tails, model.score_heads, data.split(s), known, seen,
                                data.n_entities, memory_mb) for s in splits}


def _optimizer(name: str, params: list[Tensor], cfg: KGConfig) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg.train.lr)
    return torch.optim.Adagrad(params, lr=cfg.train.lr, initial_accumulator_value=cfg.train.initial_accumulator)


def thread_scope(cfg: KGConfig):
    """A context with torch's thread count at `train.threads` (if given; else torch's default is left
    alone), the caller's restored on exit (`jnskr.threads.scoped_threads`; the CLI keeps freed
    memory: jnskr.threads)."""
    from jnskr.threads import scoped_threads

    return scoped_threads(cfg.train.threads) if cfg.train.threads else contextlib.nullcontext()


def fit(cfg: KGConfig, data: KGData, on_eval: Callable[[dict], None] | None = None,
        trace_test: bool = False, progress=None) -> FitResult:
    """Train with validation-based selection; return the best-selected model, its metrics and the history.

    History rows: ``seconds`` (wall since training began, evaluations included) and
    ``train_seconds`` (evaluations excluded, as PyKEEN's curves count).  ``trace_test`` also ranks
    the test set at every evaluation (``test_mrr``/``test_hits@k`` in the rows: a time-to-accuracy
    curve for benchmarks; never used to select anything).  `progress`: a progress object of
    `jnskr.progress` (None: none)."""
    with thread_scope(cfg):
        trainer = KGTrainer(cfg, data, on_eval=on_eval, trace_test=trace_test, progress=progress)
        trainer.train()
        return trainer.result()


class _Tables:
    """The tables as the model `jnskr.training.checkpoint.Checkpointer` saves and restores: restored
    in place, so the optimizer keeps its parameters."""

    def __init__(self, tables: dict[str, Tensor]):
        self.tables = tables

    def state_dict(self) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in self.tables.items()}

    @torch.no_grad()
    def load_state_dict(self, tensors: dict[str, Tensor]) -> None:
        for k, v in self.tables.items():
            got = tensors.get(k)
            if got is None or got.shape != v.shape or got.dtype != v.dtype:
                raise RuntimeError(f"table {k!r}: expected {tuple(v.shape)} {v.dtype}, found "
                                   f"{'none' if got is None else f'{tuple(got.shape)} {got.dtype}'}")
        if set(tensors) != set(self.tables):
            raise RuntimeError(f"tables {sorted(tensors)}, expected {sorted(self.tables)}")
        for k, v in self.tables.items():
            v.copy_(tensors[k])


@dataclass
class KGState:
    """The loop's state (plain types: `torch.load(weights_only=True)` reads it back)."""

    epoch: int = 0  # epochs done
    best_mrr: float = -1.0
    best_epoch: int = 0
    best_seconds: float = 0.0
    best_train_seconds: float = 0.0
    bad: int = 0  # evaluations without improvement
    eval_s: float = 0.0  # seconds spent evaluating
    elapsed: float = 0.0  # seconds since training began, at the end of `epoch`
    stopped: str | None = None  # why training ended early (patience, time limit)


class KGTrainer:
    """The epochs of one `jnskr kg` run (module docstring).  `on_epoch_end(trainer, row)` is called
    after each epoch's row (the run folder's log and checkpoints, `jnskr.kg.run`)."""

    def __init__(self, cfg: KGConfig, data: KGData, *, on_eval: Callable[[dict], None] | None = None,
                 trace_test: bool = False, progress=None):
        check_before_training(cfg, data)  # a usable validation split, the memory estimate (jnskr.kg.checks)
        self.cfg, self.data, self.on_eval, self.trace_test, self.progress = cfg, data, on_eval, trace_test, progress
        self.on_epoch_end: Callable[["KGTrainer", dict], None] | None = None
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.spec = spec = get_model(cfg.model)
        self.obj = build_objective(cfg, data)
        tables = spec.init_tables(data.n_entities, self.obj.b.shape[0], cfg.dim, cfg.init_std, self.gen,
                                  getattr(torch, cfg.dtype))
        self.exact = spec.exact_roles() if cfg.train.solver == "als" else []
        first_order = [n for n in spec.table_names() if n not in {spec.roles[r] for r in self.exact}]
        for n in first_order:
            tables[n].requires_grad_(True)
        self.opt = _optimizer("adagrad" if cfg.train.solver == "als" else cfg.train.solver,
                              [tables[n] for n in first_order], cfg) if first_order else None
        self.model = _Tables(tables)
        self.best_weights: dict[str, Tensor] | None = {k: v.detach().clone() for k, v in tables.items()}
        self.epoch_seconds = 0.0  # the last epoch's training time (`jnskr.kg.run` checkpoints a long one)
        self.state = KGState()
        self.history: list[dict] = []
        self.known = KnownTriples(torch.cat([data.train, data.valid, data.test]), data.n_entities, data.n_relations)
        self.seen = data.seen_in_train()

    @property
    def tables(self) -> dict[str, Tensor]:
        return self.model.tables

    @property
    def batches_per_epoch(self) -> int:
        """First-order steps and block solves of one epoch (what progress counts)."""
        steps = -(-self.obj.n // self.cfg.train.batch_size) if self.opt is not None else 0
        return steps + len(self.exact)

    def is_eval_epoch(self, epoch: int) -> bool:
        """Epoch `epoch` (1-based) ends with a validation evaluation (or ends training)."""
        return epoch % self.cfg.train.eval_every == 0 or epoch == self.cfg.train.epochs

    def as_model(self, tables: dict[str, Tensor]) -> KGModel:
        return KGModel(self.spec, tables, self.data.entity_ids, self.data.relation_ids, self.cfg.reciprocal)

    # ------------------------------------------------------------------ resumable
    def state_dict(self) -> dict:
        return {"optimizer": self.opt.state_dict() if self.opt is not None else {}, "state": asdict(self.state),
                "history": json.dumps(self.history), "rng": self.gen.get_state()}

    def load_state_dict(self, d: dict) -> None:
        if self.opt is not None:
            self.opt.load_state_dict(d["optimizer"])
        self.state = KGState(**d["state"])
        self.history = json.loads(d["history"])
        self.gen.set_state(d["rng"])

    # ------------------------------------------------------------------ training
    def train(self) -> None:
        """Train from `state.epoch` to the end (epoch cap, patience or time limit)."""
        from jnskr.eta import tell_schedule

        cfg, st, progress = self.cfg, self.state, self.progress
        log.debug("torch threads: %d", torch.get_num_threads())
        log.info("kg %s on %s: %d entities, %d relation rows, %d training triples, solver %s%s", cfg.model,
                 self.data.name, self.data.n_entities, self.obj.b.shape[0], self.obj.n, cfg.train.solver,
                 f" (resumed after epoch {st.epoch})" if st.epoch else "")
        if progress is not None:
            tell_schedule(progress, cfg.train.eval_every, cfg.train.patience, "mrr")
            progress.start(st.epoch, cfg.train.epochs, self.batches_per_epoch)
        try:
            t0 = time.perf_counter() - st.elapsed
            while st.stopped is None and st.epoch < cfg.train.epochs:
                self._epoch(st.epoch + 1, t0)
        finally:
            if progress is not None:
                progress.close()

    def _epoch(self, epoch: int, t0: float) -> None:
        cfg, st, obj, tables, bs = self.cfg, self.state, self.obj, self.tables, self.cfg.train.batch_size
        tick = (lambda: self.progress.batch(epoch - 1, float("nan"))) if self.progress is not None else (lambda: None)
        started = time.perf_counter()
        if self.opt is not None:
            perm = torch.randperm(obj.n, generator=self.gen)
            for s in range(0, obj.n, bs):
                stop.boundary()  # a prompt stop: the epoch under way is discarded (the last checkpoint stands)
                loss = obj.batch(tables, obj.pos.index_select(0, perm[s:s + bs]))
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                tick()
        for role in self.exact:
            stop.boundary()
            tables[self.spec.roles[role]] = solve_block(obj, tables, role)
            tick()
        self.epoch_seconds = time.perf_counter() - started  # its training alone (whether to checkpoint it)
        f = obj.value(tables)
        now = time.perf_counter()
        row = {"epoch": epoch, "objective": f, "seconds": round(now - t0, 3),
               "train_seconds": round(now - t0 - st.eval_s, 3)}
        if not math.isfinite(f):
            raise JnskrError(f"training diverged (objective {f}) at epoch {epoch}: lower train.lr or init_std")
        over = cfg.train.time_limit is not None and time.perf_counter() - t0 >= cfg.train.time_limit
        if self.is_eval_epoch(epoch) or over:
            self._evaluate(row, epoch, t0, now)
        st.epoch = epoch
        if st.bad >= cfg.train.patience:
            st.stopped = f"no validation improvement in {st.bad} evaluations"
        elif over:
            st.stopped = f"time limit {cfg.train.time_limit:g} s"
        st.elapsed = time.perf_counter() - t0
        self.history.append(row)
        if self.progress is not None:
            rec = {"epoch": epoch, "loss": f, **({"valid": {"mrr": row["valid_mrr"]}} if "valid_mrr" in row else {})}
            self.progress.epoch_end(rec)
        if self.on_epoch_end is not None:
            self.on_epoch_end(self, row)

    def _evaluate(self, row: dict, epoch: int, t0: float, now: float) -> None:
        cfg, st, rule = self.cfg, self.state, self.cfg.eval.select_rule
        with torch.no_grad():
            model = self.as_model(self.tables)
            valid = evaluate_ranking(*_scorers(model), self.data.valid, self.known, self.seen, self.data.n_entities,
                                     cfg.eval.memory_mb, rules=(rule,))[rule]
            if self.trace_test:
                test = evaluate_ranking(*_scorers(model), self.data.test, self.known, self.seen, self.data.n_entities,
                                        cfg.eval.memory_mb, rules=(rule,))[rule]
                row.update({f"test_{k}": test[k] for k in ("mrr", "hits@1", "hits@3", "hits@10")})
        if not math.isfinite(valid["mrr"]):
            raise JnskrError(f"validation MRR is {valid['mrr']} at epoch {epoch}: no epoch can be selected")
        row["valid_mrr"] = valid["mrr"]
        row["seconds"] = round(time.perf_counter() - t0, 3)
        st.eval_s += time.perf_counter() - now
        if valid["mrr"] > st.best_mrr + cfg.train.min_delta:
            st.best_mrr, st.best_epoch, st.best_seconds = valid["mrr"], epoch, row["seconds"]
            st.best_train_seconds, st.bad = row["train_seconds"], 0
            self.best_weights = {k: v.detach().clone() for k, v in self.tables.items()}
        else:
            st.bad += 1
        log.info("epoch %d  F %.6g  valid MRR (%s) %.4f  best %.4f @ %d  %.1fs", epoch, row["objective"], rule,
                 valid["mrr"], st.best_mrr, st.best_epoch, row["seconds"])
        if self.on_eval is not None:
            self.on_eval(row)

    def result(self) -> FitResult:
        """The best-selected model, evaluated on valid and test (both unseen-entity rules)."""
        cfg, st = self.cfg, self.state
        model = self.as_model(self.best_weights)
        t1 = time.perf_counter()
        metrics = evaluate_model(model, self.data, ("valid", "test"), cfg.eval.memory_mb, self.known)
        metrics.update(best_epoch=st.best_epoch, epochs_run=len(self.history), stopped=st.stopped or "max epochs",
                       seconds_to_best=st.best_seconds, seconds_train=round(st.elapsed, 3),
                       train_seconds_to_best=st.best_train_seconds, seconds_eval=round(st.eval_s, 3),
                       seconds_final_eval=round(time.perf_counter() - t1, 3), select_rule=cfg.eval.select_rule,
                       objective_at_best=next((h["objective"] for h in self.history if h["epoch"] == st.best_epoch),
                                              None))
        model.metrics = metrics
        return FitResult(model, metrics, self.history)


def _scorers(model: KGModel):
    return model.score_tails, model.score_heads
