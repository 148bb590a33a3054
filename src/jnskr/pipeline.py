"""The training pipeline: `run(config, dataset, run_dir)` from named steps.

    prepare   protocol split (validation holdout, or none under `protocol: paper`), the item KG
              for models that use one, the id maps
    build     the registered model class for `config.model`
    train     the trainer with its objective, strategy, validation, checkpoints and log
    select    the best validation epoch's weights
    refit     (train.refit) the selected number of epochs again on all of train
    evaluate  the test split (train items masked)
    save      the run folder (`jnskr.runs.RunFolder`): created whole when training starts,
              checkpointed (`jnskr.training.checkpoint`), marked finished last

Each step is a function; `Recommender.fit` is `run` plus the query methods.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jnskr.config import Config, refresh_defaults
from jnskr.data.dataset import Dataset, Interactions
from jnskr.data.kg import ItemKG, build_item_kg
from jnskr.data.split import validation_split
from jnskr.errors import JnskrError
from jnskr.eta import tell_schedule
from jnskr.evaluation import evaluate as evaluate_ranking
from jnskr.ids import IdMaps
from jnskr.models import MODELS, ModelData, get
from jnskr import locks, stop
from jnskr.parallel import DistStrategy, LocalStrategy, init_from_env, shard_users, sum_across_ranks, world_from_env
from jnskr.runs import RunFolder
from jnskr.saved import SELECTION_FILE, RunResult, resolve_device, save, save_selection, write_run_files
from jnskr.threads import scoped_threads
from jnskr.sizing import Sizes, check_memory, memory_limit
from jnskr.training.checkpoint import Checkpointer, checkpoint_epoch
from jnskr.training.lockstep import Lockstep, use_lockstep
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
        train_part, valid = validation_split(ds.train, cfg.data.valid_ratio, cfg.data.split_seed, ds.name)
    if ds.train.values is not None and not get(cfg.model).uses_confidence:
        users = ", ".join(sorted(name for name, c in MODELS.items() if c.uses_confidence))
        log.warning("model %s ignores the per-pair confidence of data.weight: confidence (every training pair "
                    "counts as 1; %s use it)", cfg.model, users)
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
                 progress, say_weights: bool = True) -> Trainer | None:
    """The trainer of `model` on `train_part` (None when its class has nothing to train);
    `say_weights`: log its negative-weight summary at INFO (the refit's: at DEBUG)."""
    objective = model.objective(train_part, item_kg, cfg.seed)
    if objective is None:
        return None
    sweeps = (model.block_sweeps(train_part, item_kg, cfg.train.batch_size, cfg.train.block_solver,
                                 cfg.train.cg_steps) if cfg.train.solver == "als" else None)
    if summary := objective.weight_summary():
        log.log(logging.INFO if say_weights else logging.DEBUG, "weights: %s",
                {k: round(v, 5) for k, v in summary.items()})
    return Trainer(
        model, objective, seed=cfg.seed, batch_size=cfg.train.batch_size, epochs=epochs,
        drop_last=cfg.train.drop_last, optimizer=cfg.train.optimizer, lr=cfg.learning_rate(),
        initial_accumulator=cfg.train.initial_accumulator, eval_every=cfg.train.eval_every,
        eval_schedule="paper" if cfg.train.protocol == "paper" else "standard", patience=cfg.train.patience,
        select_metric=cfg.train.select_metric, validate=validate, strategy=strategy, progress=progress, sweeps=sweeps,
    )


def train(cfg: Config, model, prep: Prepared, strategy, folder: RunFolder | None, resume: bool, progress,
          result: RunResult | None = None, lockstep: Lockstep | None = None) -> Trainer | None:
    """Train `model` with selection on validation (on test under protocol paper); keep the best.

    With a run folder: a fresh run creates it here, whole, with a checkpoint of the untrained
    state (`start_folder`); a checkpoint follows the first epoch, every evaluation and every epoch
    long enough to be worth one (`Checkpointer.worth`) (or every `train.checkpoint_every` epochs),
    the early stop, the last epoch and a stop requested at an epoch's end, so a run killed at any
    moment resumes to the same weights.  A stop requested during an epoch takes effect at its next
    batch boundary and discards it (`jnskr.stop`; one process only: under torchrun every rank stops
    at the end of the same epoch).  `lockstep` (the refit beside selection) hears of every
    completed epoch."""
    ds = prep.dataset
    if cfg.train.protocol == "paper":
        validate = lambda: evaluate(model, cfg, ds.test, [ds.train], strategy)  # noqa: E731
    else:
        validate = lambda: evaluate(model, cfg, prep.valid, [prep.train_part], strategy)  # noqa: E731
    trainer = make_trainer(cfg, model, prep.train_part, prep.item_kg, cfg.train.epochs, validate, strategy, progress)
    ckpt = Checkpointer(folder.path) if folder is not None else None
    if folder is not None and resume:
        done = ckpt.load(trainer) if trainer is not None else 0
        log.info("resuming after epoch %d", done)
        folder.truncate_log(done)
        if result is not None and not folder.file(SELECTION_FILE).is_file():  # started before the file existed
            save_selection(folder, result)
        folder.write_status("running", resumable_from_epoch=done)
    elif folder is not None:
        start_folder(folder, result, trainer)
    if trainer is None:
        return None
    if lockstep is not None:
        lockstep.selection_epoch(trainer.state.epoch, trainer.state.best_epoch)
        lockstep.start()
    every = cfg.train.checkpoint_every

    def after_epoch(tr: Trainer, record: dict) -> None:
        if lockstep is not None:
            lockstep.selection_epoch(tr.state.epoch, tr.state.best_epoch)
        asked = strategy.any_rank(stop.requested() is not None)  # every rank stops after the same epoch
        if folder is not None:
            folder.append_log(record)
            e = tr.state.epoch
            due = (e % every == 0) if every else (tr.is_eval_epoch(e - 1) or ckpt.worth(record["seconds"]))
            if due or asked or e == 1 or e == tr.epochs or tr.state.stopped:
                ckpt.save(tr)
                folder.write_status("running", resumable_from_epoch=e)
        if asked:
            raise stop.Interrupted(stop.requested() or signal.SIGTERM)

    trainer.on_epoch_end = after_epoch
    tell_schedule(progress, cfg.train.eval_every, cfg.train.patience, cfg.train.select_metric)  # ETAs from early stopping
    try:
        with stop.deferred(prompt=strategy.world == 1):  # ranks would leave each other's collectives
            trainer.fit()
    except TrainingDiverged as exc:  # say what is actually kept
        kept = checkpoint_epoch(ckpt)
        what = ("no run folder: nothing was saved" if folder is None else "no checkpoint was saved" if kept is None
                else f"{ckpt.dir} keeps the weights after epoch {kept}" if kept
                else f"{ckpt.dir} keeps only the initial weights (no epoch completed)")
        if folder is not None:
            folder.write_status("diverged", message=str(exc), resumable_from_epoch=kept)
        raise TrainingDiverged(f"{exc}; {what} (lower train.lr or init_std, or check the data)") from None
    trainer.restore_best()
    return trainer


def start_folder(folder: RunFolder, result: RunResult, trainer: Trainer | None) -> None:
    """Create the run folder of a fresh run, whole: config, ids, environment, the checkpoint of
    the untrained state and `status.json` appear together (`RunFolder.create`)."""

    def first_files(f: RunFolder) -> None:
        write_run_files(f, result)
        save_selection(f, result)  # what `--checkpoint best` builds its model on
        if trainer is not None:
            Checkpointer(f.path).save(trainer)
        f.write_status("running", resumable_from_epoch=0 if trainer is not None else None)

    folder.create(first_files)


def _epoch_unit(cfg: Config) -> str:
    return "sweeps" if cfg.train.solver == "als" else "epochs"


def refit_trainer(cfg: Config, prep: Prepared, epochs: int, device, strategy):
    """A fresh model and its trainer on all of train.  -> (model, item KG, trainer or None)."""
    ds = prep.dataset
    item_kg = None
    if prep.item_kg is not None:
        item_kg = build_item_kg(ds.kg, ds.n_items, ds.train.item_counts(), cfg.data.kg_heads,
                                cfg.data.inverse_relations)
    full = Prepared(ds, ds.train, None, item_kg, prep.ids)
    model = build(cfg, full, device)
    trainer = make_trainer(cfg, model, ds.train, item_kg, epochs, None, strategy, None, say_weights=False)
    return model, item_kg, trainer


def refit(cfg: Config, prep: Prepared, epochs: int, device, strategy, folder: RunFolder | None, progress):
    """A fresh model trained on all of train for the selected number of epochs (or sweeps).
    -> (model, item KG, seconds)."""
    log.info("refit: %d %s on all of train (%d pairs)", epochs, _epoch_unit(cfg), prep.dataset.train.nnz)
    t0 = time.perf_counter()
    model, item_kg, trainer = refit_trainer(cfg, prep, epochs, device, strategy)
    trainer.progress = progress
    if folder is not None:  # not checkpointed: a resumed run refits again from the selection result
        trainer.on_epoch_end = lambda tr, record: folder.append_log({**record, "refit": True})
    trainer.fit()
    return model, item_kg, time.perf_counter() - t0


def finish_lockstep(cfg: Config, lockstep: Lockstep, epochs: int, folder: RunFolder | None, progress) -> float:
    """The refit that ran beside selection ends at `epochs`; its log records follow selection's
    (the last with the objective, as a sequential refit logs it) and `progress` is shown them as
    its refit phase.  -> seconds waited for it."""
    t0 = time.perf_counter()
    records = lockstep.finish(epochs)
    tr = lockstep.trainer
    if tr.sweeps is not None and records and "loss" not in records[-1]:
        with torch.no_grad():
            records[-1] = {**records[-1], "loss": tr.sweeps.value()}
    if progress is not None:
        progress.start(0, epochs, 1)
        for record in records:
            progress.batch(record["epoch"] - 1, float(record.get("loss", record.get("batch_loss", math.nan))))
            progress.epoch_end(record)
        progress.close()
    if folder is not None:
        for record in records:
            folder.append_log({**record, "refit": True})
    log.info("refit: %d %s on all of train, run beside selection", epochs, _epoch_unit(cfg))
    return time.perf_counter() - t0


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
        "solver": cfg.train.solver if trainer is not None else None,
        "dataset": prep.dataset.name,
        "epochs_run": epochs_run,
        "train_seconds": round(seconds, 3),
        "epoch_mean_seconds": round(seconds / epochs_run, 4) if epochs_run else 0.0,
        "selected_on": "test" if paper else "valid",
        "select_metric": cfg.train.select_metric,
        "refit": None,
    }


# --------------------------------------------------------------- the whole
def run(cfg: Config, ds: Dataset, run_dir: str | Path | None = None, resume: bool = False,
        progress=None) -> RunResult:
    """Train and evaluate `cfg` on `ds` (protocol from the config); write `run_dir` if given.

    The memory the config asks for is checked before the model is built (`jnskr.sizing`); the run
    folder appears only when training starts, with `status.json` and `checkpoint/` (see `train`),
    and `resume=True` continues from its checkpoint: the result equals an uninterrupted run.
    Under `train.refit` (default with protocol standard) the selected number of epochs is then
    trained again on all of train, and that model is evaluated and saved (a resumed run refits
    again).  Ctrl-C / SIGTERM mark the run "interrupted" and raise `jnskr.stop.Interrupted`.
    Torch's thread count and global RNG state are restored on return (`scoped_threads`)."""
    cfg = refresh_defaults(cfg)
    writer = run_dir is not None and world_from_env()[0] == 0  # under torchrun rank 0 alone writes the folder
    with locks.hold(run_dir, "resuming" if resume else "writing") if writer else nullcontext(), \
            scoped_threads(cfg.threads, ds.train.nnz, ds.n_users + ds.n_items):
        return _run(cfg, ds, run_dir, resume, progress)


def _run(cfg: Config, ds: Dataset, run_dir, resume: bool, progress) -> RunResult:
    torch.manual_seed(cfg.seed)
    if cfg.layers():
        log.info("config: %s", " <- ".join(cfg.layers()))
    device = resolve_device(cfg.device)
    prep = prepare(cfg, ds)
    kg = prep.item_kg
    need = check_memory(cfg, Sizes(ds.n_users, ds.n_items, kg.n_tails if kg else 0, kg.n_relations if kg else 0,
                                   kg.n_facts if kg else 0), device)
    limit, _ = memory_limit(cfg, device)
    room_for_two = not limit or 2 * need <= limit  # the refit beside selection holds a second model
    model = build(cfg, prep, device)
    strategy = make_strategy(device)
    if strategy.world > 1:
        if resume:
            raise JnskrError("--resume is not supported under torchrun; resume with one process")
        if not model.supports_distributed:
            raise JnskrError(f"model {cfg.model} does not support distributed training; run it in one process")
        if not strategy.is_main():  # rank 0 alone logs and writes; the losses it logs are global
            run_dir, progress = None, None
    result = RunResult(config=cfg, model=model, ids=prep.ids, train_seen=ds.train,
                       item_counts=ds.train.item_counts(), item_kg=prep.item_kg, fingerprint=ds.fingerprint(),
                       device=device)
    folder = RunFolder(run_dir) if run_dir is not None else None
    level = log.level  # the other ranks log errors only, for this run (the caller's level comes back)
    try:
        log.setLevel(log.level if strategy.is_main() else logging.ERROR)
        finish(cfg, prep, result, strategy, folder, resume, progress, room_for_two)
    except (KeyboardInterrupt, stop.Interrupted) as exc:  # Ctrl-C, SIGTERM: mark the folder, then stop
        _mark_interrupted(exc, folder)
        raise
    finally:
        log.setLevel(level)
    return result


def _mark_interrupted(exc: BaseException, folder: RunFolder | None) -> None:
    """Status "interrupted" with the epoch of the last checkpoint (also set on `exc`)."""
    exc.run_dir, exc.epoch = None, None
    if folder is None or not folder.file("status.json").is_file():
        return
    exc.run_dir, exc.epoch = folder.path, checkpoint_epoch(Checkpointer(folder.path))
    try:
        if folder.read_status().get("status") != "finished":
            folder.write_status("interrupted", resumable_from_epoch=exc.epoch)
    except JnskrError:
        pass


def finish(cfg: Config, prep: Prepared, result: RunResult, strategy, folder: RunFolder | None, resume: bool,
           progress, room_for_two: bool = True) -> None:
    """Train, refit, evaluate on test and save: the steps after the model is built
    (`room_for_two`: memory allows the refit's model beside selection's)."""
    ds, model, device = prep.dataset, result.model, result.device
    t0 = time.perf_counter()
    lockstep = None
    if cfg.train.refit and use_lockstep(cfg.train.refit_parallel, device, strategy.world, room_for_two):
        refit_model, refit_kg, refit_tr = refit_trainer(cfg, prep, cfg.train.epochs, device, strategy)
        lockstep = Lockstep(refit_tr) if refit_tr is not None else None
    try:
        trainer = train(cfg, model, prep, strategy, folder, resume, progress, result, lockstep)
        seconds = time.perf_counter() - t0
        refit_info, refit_s = None, 0.0
        if trainer is not None and cfg.train.refit and trainer.state.best_epoch > 0:
            if lockstep is not None:
                refit_s = finish_lockstep(cfg, lockstep, trainer.state.best_epoch, folder, progress)
                model, result.item_kg = refit_model, refit_kg
            else:
                model, result.item_kg, refit_s = refit(cfg, prep, trainer.state.best_epoch, device, strategy,
                                                       folder, progress)
            result.model = model
            refit_info = {"epochs": trainer.state.best_epoch, "trained_on": "all of train",
                          "beside_selection": lockstep is not None}
    finally:
        if lockstep is not None:  # stops the refit thread if selection failed (a finished one: no-op)
            lockstep.cancel()
    t1 = time.perf_counter()
    model.use_interactions(ds.train)  # part of fitting for a model built from the interactions (item-KNN)
    seconds += time.perf_counter() - t1
    if cfg.train.protocol == "paper" and trainer is not None:
        test = trainer.state.best_valid
    else:
        test = evaluate(model, cfg, ds.test, [ds.train], strategy)
    result.trainer = trainer
    result.metrics = metrics_record(cfg, prep, trainer, test, seconds)
    if refit_info is not None:
        result.metrics["refit"] = refit_info
        result.metrics["refit_seconds"] = round(refit_s, 3)
        result.metrics["selection_seconds"] = result.metrics["train_seconds"]
        result.metrics["train_seconds"] = round(seconds + refit_s, 3)
    if folder is not None:
        save(folder, result)  # metrics.json last
        folder.write_status("finished", resumable_from_epoch=trainer.state.epoch if trainer is not None else None)
