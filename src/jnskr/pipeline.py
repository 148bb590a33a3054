"""The training pipeline: `run(config, dataset, run_dir)` from named steps.

    prepare   protocol split (validation holdout, or none under `protocol: paper`), the item KG
              for models that use one, the id maps
    build     the registered model class for `config.model`
    train     the trainer with its objective, strategy, validation, checkpoints and log
    select    the best validation epoch's weights
    evaluate  the test split (train items masked)
    save      the run folder (`jnskr.runs.RunFolder`)

Each step is a function; `Recommender.fit` is `run` plus the query methods.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jnskr.config import Config
from jnskr.data.dataset import Dataset, Interactions
from jnskr.data.kg import ItemKG, build_item_kg
from jnskr.data.split import holdout_split
from jnskr.errors import JnskrError
from jnskr.evaluation import evaluate as evaluate_ranking
from jnskr.ids import IdMaps
from jnskr.models import ModelData, get
from jnskr.parallel import DistStrategy, LocalStrategy, init_from_env, shard_users, sum_across_ranks
from jnskr.runs import RunFolder
from jnskr.saved import RunResult, resolve_device, save, write_run_files
from jnskr.threads import set_threads
from jnskr.training.checkpoint import Checkpointer, checkpoint_epoch
from jnskr.training.trainer import Trainer, TrainingDiverged

log = logging.getLogger("jnskr")


@dataclass
class Prepared:
    """The data of a run after the `prepare` step."""

    dataset: Dataset
    train_part: Interactions  # what the model trains on (train minus the validation holdout)
    valid: Interactions | None  # None under protocol paper (selection on test)
    item_kg: ItemKG | None
    ids: IdMaps


# ------------------------------------------------------------------- steps
def prepare(cfg: Config, ds: Dataset) -> Prepared:
    if cfg.train.protocol == "paper":
        log.warning("protocol: paper -- model selection on the TEST set, as the original code "
                    "(optimistic; use protocol: standard for honest numbers)")
        train_part, valid = ds.train, None
    else:
        train_part, valid = holdout_split(ds.train, cfg.data.valid_ratio, cfg.data.split_seed)
    item_kg = None
    uses_kg = get(cfg.model).uses_kg
    if not cfg.data.use_kg and ds.has_kg:
        log.info("data.use_kg is false: ignoring the KG of %s (CF-only)", ds.name)
    if uses_kg and ds.has_kg and cfg.data.use_kg:
        item_kg = build_item_kg(ds.kg, ds.n_items, train_part.item_counts(), cfg.data.kg_heads,
                                cfg.data.inverse_relations)
        log.info("item KG: %d facts, %d relations, %d tails, %d of %d items with facts", item_kg.n_facts,
                 item_kg.n_relations, item_kg.n_tails, int((item_kg.degrees() > 0).sum()), ds.n_items)
    elif uses_kg and not ds.has_kg:
        log.warning("dataset %s has no KG: training %s as a CF-only model", ds.name, cfg.model)
    return Prepared(ds, train_part, valid, item_kg, IdMaps.from_dataset(ds, item_kg))


def build(cfg: Config, prep: Prepared, device: torch.device):
    data = ModelData(prep.dataset.n_users, prep.dataset.n_items, prep.train_part.item_counts(), prep.item_kg)
    return get(cfg.model).build(cfg, data).to(device)


def evaluate(model, cfg: Config, test: Interactions, exclude: list[Interactions], strategy=None) -> dict:
    """Full-ranking metrics of `model` on `test` (sharded over ranks when distributed)."""
    model.eval()
    model.prepare_scoring()
    users, reduce = None, None
    if strategy is not None and strategy.world > 1:
        users = shard_users(np.flatnonzero(test.user_counts() > 0), strategy.rank, strategy.world)
        reduce = sum_across_ranks
    ks = sorted(set(cfg.eval.ks) | {cfg.select_k()})
    return evaluate_ranking(model, test, exclude, ks=ks, k_max=cfg.eval.k_max, batch_size=cfg.eval.batch_size,
                            users=users, reduce=reduce).metrics


def make_strategy(device: torch.device):
    if init_from_env(device):
        st = DistStrategy()
        log.info("distributed: rank %d of %d (%s)", st.rank, st.world, "nccl" if device.type == "cuda" else "gloo")
        return st
    return LocalStrategy()


def make_trainer(cfg: Config, model, train_part: Interactions, item_kg, epochs: int, validate, strategy,
                 progress) -> Trainer | None:
    """The trainer of `model` on `train_part` (None when its class has nothing to train)."""
    objective = model.objective(train_part, item_kg, cfg.seed)
    if objective is None:
        return None
    sweeps = model.block_sweeps(train_part, item_kg, cfg.train.batch_size) if cfg.solver() == "als" else None
    if hasattr(objective, "weight_summary"):
        log.info("weights: %s", {k: round(v, 5) for k, v in objective.weight_summary().items()})
    return Trainer(
        model, objective, seed=cfg.seed, batch_size=cfg.train.batch_size, epochs=epochs,
        drop_last=cfg.drop_last(), optimizer=cfg.train.optimizer, lr=cfg.learning_rate(),
        initial_accumulator=cfg.train.initial_accumulator, eval_every=cfg.eval_every(),
        eval_schedule="paper" if cfg.train.protocol == "paper" else "standard", patience=cfg.patience(),
        select_metric=cfg.select_metric(), validate=validate, strategy=strategy, progress=progress, sweeps=sweeps,
    )


def train(cfg: Config, model, prep: Prepared, strategy, folder: RunFolder | None, resume: bool, progress) -> Trainer | None:
    """Train `model` with selection on validation (on test under protocol paper); keep the best."""
    ds = prep.dataset
    if cfg.train.protocol == "paper":
        validate = lambda: evaluate(model, cfg, ds.test, [ds.train], strategy)  # noqa: E731
    else:
        validate = lambda: evaluate(model, cfg, prep.valid, [prep.train_part], strategy)  # noqa: E731
    trainer = make_trainer(cfg, model, prep.train_part, prep.item_kg, cfg.train.epochs, validate, strategy, progress)
    if trainer is None:
        return None
    ckpt = Checkpointer(folder.path) if folder is not None else None
    every = cfg.train.checkpoint_every

    def after_epoch(tr: Trainer, record: dict) -> None:
        if folder is None:
            return
        folder.append_log(record)
        e = tr.state.epoch
        due = (e % every == 0) if every else (tr.is_eval_epoch(e - 1) or tr.state.stopped)
        if due:
            ckpt.save(tr)

    trainer.on_epoch_end = after_epoch
    if resume and ckpt is not None:
        done = ckpt.load(trainer)
        log.info("resuming after epoch %d", done)
        folder.truncate_log(done)
    try:
        trainer.fit()
    except TrainingDiverged as exc:
        if folder is not None:
            folder.write_status("diverged", message=str(exc), resumable_from_epoch=checkpoint_epoch(ckpt))
        raise
    trainer.restore_best()
    return trainer


def refit(cfg: Config, prep: Prepared, epochs: int, device, strategy, folder: RunFolder | None, progress):
    """A fresh model trained on all of train for the selected number of epochs (or sweeps).
    -> (model, item KG, seconds)."""
    ds = prep.dataset
    item_kg = None
    if prep.item_kg is not None:
        item_kg = build_item_kg(ds.kg, ds.n_items, ds.train.item_counts(), cfg.data.kg_heads,
                                cfg.data.inverse_relations)
    full = Prepared(ds, ds.train, None, item_kg, prep.ids)
    log.info("refit: %d %s on all of train (%d pairs)", epochs, "sweeps" if cfg.solver() == "als" else "epochs",
             ds.train.nnz)
    t0 = time.perf_counter()
    model = build(cfg, full, device)
    trainer = make_trainer(cfg, model, ds.train, item_kg, epochs, None, strategy, progress)
    if folder is not None:
        trainer.on_epoch_end = lambda tr, record: folder.append_log({**record, "refit": True})
    trainer.fit()
    return model, item_kg, time.perf_counter() - t0


def metrics_record(cfg: Config, prep: Prepared, trainer: Trainer | None, test: dict, seconds: float) -> dict:
    paper = cfg.train.protocol == "paper"
    epochs_run = trainer.state.epoch if trainer is not None else 0
    return {
        "test": test,
        "valid": {} if paper or trainer is None else trainer.state.best_valid,
        "best_epoch": trainer.state.best_epoch if trainer is not None else 0,
        "k_max": cfg.eval.k_max,
        "protocol": cfg.train.protocol,
        "model": cfg.model,
        "solver": cfg.solver() if trainer is not None else None,
        "dataset": prep.dataset.name,
        "epochs_run": epochs_run,
        "train_seconds": round(seconds, 3),
        "seconds_per_epoch": round(seconds / epochs_run, 4) if epochs_run else 0.0,
        "selected_on": "test" if paper else "valid",
        "select_metric": cfg.select_metric(),
        "refit": None,
    }


# --------------------------------------------------------------- the whole
def run(cfg: Config, ds: Dataset, run_dir: str | Path | None = None, resume: bool = False,
        progress=None) -> RunResult:
    """Train and evaluate `cfg` on `ds` (protocol from the config); write `run_dir` if given.

    With a run folder, a checkpoint is written every `train.checkpoint_every` epochs (0: at every
    evaluation) and `resume=True` continues from it; the result equals an uninterrupted run.
    Under `train.refit` (default with protocol standard) the selected number of epochs is then
    trained again on all of train, and that model is evaluated and saved."""
    set_threads(cfg.threads, ds.train.nnz, ds.n_users + ds.n_items)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    prep = prepare(cfg, ds)
    model = build(cfg, prep, device)
    strategy = make_strategy(device)
    if strategy.world > 1:
        if resume:
            raise JnskrError("--resume is not supported under torchrun; resume with one process")
        if not model.supports_distributed:
            raise JnskrError(f"model {cfg.model} does not support distributed training; run it in one process")
        if not strategy.is_main():  # only rank 0 logs and writes
            run_dir, progress = None, None
            logging.getLogger("jnskr").setLevel(logging.WARNING)
    result = RunResult(config=cfg, model=model, ids=prep.ids, train_seen=ds.train,
                       item_counts=ds.train.item_counts(), item_kg=prep.item_kg, fingerprint=ds.fingerprint(),
                       device=device)
    folder = RunFolder(run_dir) if run_dir is not None else None
    if folder is not None:
        folder.path.mkdir(parents=True, exist_ok=True)
        if not resume:
            folder.log_path.unlink(missing_ok=True)
            folder.file("metrics.json").unlink(missing_ok=True)
        write_run_files(folder, result)
        folder.write_status("running")
    t0 = time.perf_counter()
    trainer = train(cfg, model, prep, strategy, folder, resume, progress)
    seconds = time.perf_counter() - t0
    refit_info = None
    if trainer is not None and cfg.refit() and trainer.state.best_epoch > 0:
        model, result.item_kg, refit_s = refit(cfg, prep, trainer.state.best_epoch, device, strategy, folder,
                                               progress)
        result.model = model
        refit_info = {"epochs": trainer.state.best_epoch, "seconds": round(refit_s, 3),
                      "trained_on": "all of train"}
    model.use_interactions(ds.train)
    if cfg.train.protocol == "paper" and trainer is not None:
        test = trainer.state.best_valid
    else:
        test = evaluate(model, cfg, ds.test, [ds.train], strategy)
    result.trainer = trainer
    result.metrics = metrics_record(cfg, prep, trainer, test, seconds)
    if refit_info is not None:
        result.metrics["refit"] = refit_info
        result.metrics["selection_seconds"] = result.metrics["train_seconds"]
        result.metrics["train_seconds"] = round(seconds + refit_info["seconds"], 3)
    if folder is not None:
        save(folder, result)
        folder.write_status("finished")
        if trainer is not None:
            Checkpointer(folder.path).remove()
    return result
