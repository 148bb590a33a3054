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
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from jnskr.errors import JnskrError
from jnskr.kg.checks import check_before_training
from jnskr.kg.config import KGConfig
from jnskr.kg.data import KGData
from jnskr.kg.evaluate import KnownTriples, evaluate_ranking
from jnskr.kg.models import KGModel, get_model
from jnskr.kg.objective import Objective, negative_weights, with_reciprocals
from jnskr.kg.solver import solve_block

__all__ = ["FitResult", "fit", "evaluate_model", "build_objective"]

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


def fit(cfg: KGConfig, data: KGData, on_eval: Callable[[dict], None] | None = None,
        trace_test: bool = False) -> FitResult:
    """Train `cfg` on `data`; return the validation-selected model, its metrics and the history.

    History rows: ``seconds`` (wall since training began, evaluations included) and
    ``train_seconds`` (evaluations excluded, as PyKEEN's curves count).  ``trace_test`` also ranks
    the test set at every evaluation (``test_mrr``/``test_hits@k`` in the rows: a time-to-accuracy
    curve for benchmarks; never used to select anything)."""
    threads = torch.get_num_threads()  # the caller's, restored (the CLI keeps freed memory: jnskr.threads)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    try:
        return _fit(cfg, data, on_eval, trace_test)
    finally:
        torch.set_num_threads(threads)


def _fit(cfg: KGConfig, data: KGData, on_eval: Callable[[dict], None] | None, trace_test: bool) -> FitResult:
    check_before_training(cfg, data)  # a usable validation split, the memory estimate (jnskr.kg.checks)
    log.debug("torch threads: %d", torch.get_num_threads())
    gen = torch.Generator().manual_seed(cfg.seed)
    spec = get_model(cfg.model)
    dtype = getattr(torch, cfg.dtype)
    obj = build_objective(cfg, data)
    n_rel_rows = obj.b.shape[0]
    tables = spec.init_tables(data.n_entities, n_rel_rows, cfg.dim, cfg.init_std, gen, dtype)
    exact = spec.exact_roles() if cfg.train.solver == "als" else []
    first_order = [n for n in spec.table_names() if n not in {spec.roles[r] for r in exact}]
    for n in first_order:
        tables[n].requires_grad_(True)
    opt = _optimizer("adagrad" if cfg.train.solver == "als" else cfg.train.solver,
                     [tables[n] for n in first_order], cfg) if first_order else None
    known = KnownTriples(torch.cat([data.train, data.valid, data.test]), data.n_entities, data.n_relations)
    seen = data.seen_in_train()

    def as_model(tabs: dict[str, Tensor]) -> KGModel:
        return KGModel(spec, tabs, data.entity_ids, data.relation_ids, cfg.reciprocal)

    rule, bs = cfg.eval.select_rule, cfg.train.batch_size
    best = {"mrr": -1.0, "epoch": 0, "seconds": 0.0, "tables": {k: v.detach().clone() for k, v in tables.items()}}
    history: list[dict] = []
    bad, stopped, eval_s = 0, "max epochs", 0.0
    t0 = time.perf_counter()
    log.info("kg %s on %s: %d entities, %d relation rows, %d training triples, solver %s",
             cfg.model, data.name, data.n_entities, n_rel_rows, obj.n, cfg.train.solver)
    for epoch in range(1, cfg.train.epochs + 1):
        if opt is not None:
            perm = torch.randperm(obj.n, generator=gen)
            for s in range(0, obj.n, bs):
                loss = obj.batch(tables, obj.pos.index_select(0, perm[s:s + bs]))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        for role in exact:
            tables[spec.roles[role]] = solve_block(obj, tables, role)
        f = obj.value(tables)
        now = time.perf_counter()
        row = {"epoch": epoch, "objective": f, "seconds": round(now - t0, 3), "train_seconds": round(now - t0 - eval_s, 3)}
        if not math.isfinite(f):
            raise JnskrError(f"training diverged (objective {f}) at epoch {epoch}: lower train.lr or init_std")
        last = epoch == cfg.train.epochs
        over = cfg.train.time_limit is not None and time.perf_counter() - t0 >= cfg.train.time_limit
        if epoch % cfg.train.eval_every == 0 or last or over:
            with torch.no_grad():
                valid = evaluate_ranking(*_scorers(as_model(tables)), data.valid, known, seen, data.n_entities,
                                         cfg.eval.memory_mb, rules=(rule,))[rule]
                if trace_test:
                    test = evaluate_ranking(*_scorers(as_model(tables)), data.test, known, seen, data.n_entities,
                                            cfg.eval.memory_mb, rules=(rule,))[rule]
                    row.update({f"test_{k}": test[k] for k in ("mrr", "hits@1", "hits@3", "hits@10")})
            if not math.isfinite(valid["mrr"]):
                raise JnskrError(f"validation MRR is {valid['mrr']} at epoch {epoch}: no epoch can be selected")
            row["valid_mrr"] = valid["mrr"]
            row["seconds"] = round(time.perf_counter() - t0, 3)
            eval_s += time.perf_counter() - now
            if valid["mrr"] > best["mrr"] + cfg.train.min_delta:
                best.update(mrr=valid["mrr"], epoch=epoch, seconds=row["seconds"], train_seconds=row["train_seconds"],
                            tables={k: v.detach().clone() for k, v in tables.items()})
                bad = 0
            else:
                bad += 1
            log.info("epoch %d  F %.6g  valid MRR (%s) %.4f  best %.4f @ %d  %.1fs", epoch, f, rule, valid["mrr"],
                     best["mrr"], best["epoch"], row["seconds"])
            if on_eval is not None:
                on_eval(row)
        history.append(row)
        if bad >= cfg.train.patience:
            stopped = f"no validation improvement in {bad} evaluations"
            break
        if over:
            stopped = f"time limit {cfg.train.time_limit:g} s"
            break
    train_seconds = time.perf_counter() - t0
    model = as_model(best["tables"])
    t1 = time.perf_counter()
    metrics = evaluate_model(model, data, ("valid", "test"), cfg.eval.memory_mb, known)
    metrics.update(best_epoch=best["epoch"], epochs_run=len(history), stopped=stopped,
                   seconds_to_best=best["seconds"], seconds_train=round(train_seconds, 3),
                   train_seconds_to_best=best.get("train_seconds", 0.0), seconds_eval=round(eval_s, 3),
                   seconds_final_eval=round(time.perf_counter() - t1, 3), select_rule=rule,
                   objective_at_best=next((h["objective"] for h in history if h["epoch"] == best["epoch"]), None))
    model.metrics = metrics
    return FitResult(model, metrics, history)


def _scorers(model: KGModel):
    return model.score_tails, model.score_heads
