"""KG run folders and the Python entry points `train`, `resume` and `load`.

A run folder (`jnskr.runs.RunFolder`: every file written through a temporary file and a rename)::

    model.safetensors     the tables of the selected epoch (entity / relation, or head / relation / tail for CP)
    triples.safetensors   train / valid / test as int64 ids (re-evaluation and resume need no data folder)
    id_maps.json          {"entity_ids": [...], "relation_ids": [...]}: raw label of each id
    config.yaml           the resolved configuration
    metrics.json          valid and test metrics under both unseen-entity rules, best epoch, timings
    log.jsonl             one line per epoch: objective F, seconds, validation MRR when evaluated
    environment.json      versions, git commit, seed, CPU model, threads, dataset fingerprint
    status.json           running | interrupted | finished, and the epoch a resume starts after
    checkpoint/           while training: tables, best tables, trainer state (`jnskr.training.checkpoint`)

The folder appears whole when training starts (its first files and the checkpoint of the
untrained tables are written beside it and renamed into place).  A checkpoint follows the first
epoch, every evaluation, every epoch that took at least `CHEAP` times as long as writing one
(`Checkpointer.worth`), and the last epoch.  Ctrl-C / SIGTERM under `jnskr.stop.handle_signals`
(the CLI) stop at the next batch or exact block, as `jnskr train` does: the epoch under way is
discarded, the folder keeps its last checkpoint and `jnskr.stop.Interrupted` is raised (a signal
after an epoch's last step checkpoints that epoch); `resume(run_dir)` (``jnskr kg train --resume
RUN``) continues from the checkpoint with the same per-epoch figures as an uninterrupted run.  `model.safetensors` and
`metrics.json` are written last; the checkpoint is then removed.
"""

from __future__ import annotations

import shlex
import signal
import time
from pathlib import Path

import torch

from jnskr import stop
from jnskr.errors import JnskrError
from jnskr.kg.config import KGConfig, build_config, preset_for
from jnskr.kg.data import KGData
from jnskr.kg.datasets import load_triples
from jnskr.kg.models import KGModel, get_model
from jnskr.kg.trainer import FitResult, KGTrainer, thread_scope
from jnskr.runs import RunFolder, cpu_model, environment, load_tensors, read_json, read_yaml, save_tensors
from jnskr.training.checkpoint import Checkpointer, checkpoint_epoch

__all__ = ["train", "resume", "run", "open_for_resume", "load", "load_run_data", "cpu_model", "default_run_dir", "progress_for"]

RUN_KIND = "jnskr-kg"


def default_run_dir(dataset: str, model: str) -> Path:
    return Path("runs") / f"kg-{dataset.lower()}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def _check_dest(run_dir: Path) -> None:
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise JnskrError(f"{run_dir}: exists and is not an empty folder; choose another --out")


def resume_command(run_dir: Path) -> str:
    return f"jnskr kg train --resume {shlex.quote(str(run_dir))}"


def progress_for(progress):
    """A progress object from `progress`: ``"auto"`` (a bar where a person watches: Jupyter or a
    terminal, else `jnskr.progress.LogProgress` lines), True (the bar), False/None (none), or an
    object with start / batch / epoch_end / close."""
    from jnskr.progress import LogProgress, NotebookProgress, _watched

    if progress == "auto":
        return NotebookProgress() if _watched() else LogProgress()
    if progress is True:
        return NotebookProgress()
    return progress or None


def _first_files(folder: RunFolder, cfg: KGConfig, data: KGData, trainer: KGTrainer) -> None:
    """What a new run folder starts with: data, ids, config, environment, the untrained checkpoint."""
    save_tensors(folder.file("triples.safetensors"), {"train": data.train, "valid": data.valid, "test": data.test})
    folder.write_ids({"entity_ids": data.entity_ids, "relation_ids": data.relation_ids})
    folder.write_config(cfg.model_dump(mode="json"))
    folder.write_environment(environment("cpu", cfg.seed, data.fingerprint, extra={
        "run_kind": RUN_KIND, "cpu_model": cpu_model(), "dataset": data.name, "dataset_source": data.source,
        "dataset_stats": data.stats(), "dataset_notes": data.notes}))
    Checkpointer(folder.path).save(trainer)
    folder.write_status("running", run_kind=RUN_KIND, resumable_from_epoch=0)


def _finish(folder: RunFolder, cfg: KGConfig, data: KGData, result: FitResult) -> None:
    folder.save_model(result.model.tables)
    folder.write_metrics({"run_kind": RUN_KIND, "dataset": data.name, "model": cfg.model, **result.metrics})
    folder.write_status("finished", run_kind=RUN_KIND)
    Checkpointer(folder.path).remove()


def run(cfg: KGConfig, data: KGData, folder: RunFolder | None, *, resuming: bool = False, progress=None,
        on_eval=None, trace_test: bool = False) -> FitResult:
    """Train `cfg` on `data`, writing (or, `resuming`, continuing) `folder` (see the module docstring)."""
    with thread_scope(cfg):
        trainer = KGTrainer(cfg, data, on_eval=on_eval, trace_test=trace_test, progress=progress)
        ckpt = Checkpointer(folder.path) if folder is not None else None
        if ckpt is not None and resuming:
            done = ckpt.load(trainer)
            folder.truncate_log(done)
            folder.write_status("running", run_kind=RUN_KIND, resumable_from_epoch=done)
        elif folder is not None:
            folder.create(lambda f: _first_files(f, cfg, data, trainer))

        def after_epoch(tr: KGTrainer, row: dict) -> None:
            asked = stop.requested() is not None
            if folder is not None:
                folder.append_log(row)
                e = tr.state.epoch
                long = ckpt.worth(tr.epoch_seconds)  # a prompt stop then redoes only short epochs
                if e == 1 or asked or long or tr.is_eval_epoch(e) or tr.state.stopped or "valid_mrr" in row:
                    ckpt.save(tr)
                    folder.write_status("running", run_kind=RUN_KIND, resumable_from_epoch=e)
            if asked:
                raise stop.Interrupted(stop.requested() or signal.SIGTERM)

        trainer.on_epoch_end = after_epoch
        try:
            with stop.deferred(prompt=True):  # a signal stops at the next batch or block
                trainer.train()
            result = trainer.result()
            if folder is not None:
                _finish(folder, cfg, data, result)
        except (KeyboardInterrupt, stop.Interrupted) as exc:
            _mark_interrupted(exc, folder, ckpt)
            raise
    result.model.config = cfg.model_dump(mode="json")
    return result


def _mark_interrupted(exc: BaseException, folder: RunFolder | None, ckpt: Checkpointer | None) -> None:
    """Status "interrupted" with the epoch of the last checkpoint; `exc.kept` says what the folder
    keeps and how to resume (the CLI prints it, `jnskr.cli.boundary.report_interrupt`)."""
    exc.run_dir, exc.epoch = None, None
    if folder is None or not folder.file("status.json").is_file():
        exc.kept = "no run folder was written"
        return
    exc.run_dir, exc.epoch = folder.path, checkpoint_epoch(ckpt)
    try:
        if folder.read_status().get("status") != "finished":
            folder.write_status("interrupted", run_kind=RUN_KIND, resumable_from_epoch=exc.epoch)
    except JnskrError:
        pass
    kept = f"its checkpoint holds epoch {exc.epoch}" if exc.epoch is not None else "it has no checkpoint"
    exc.kept = f"{folder.path} is marked interrupted, {kept}; resume with: {resume_command(folder.path)}"


def train(config: KGConfig | dict | str | None = None, dataset: KGData | str | Path = "nations",
          run_dir: str | Path | None = None, *, overrides: list[str] | None = None, progress="auto") -> KGModel:
    """Fit a KG embedding on `dataset` (a `KGData`, a folder, or a registered name) and return it.

    `config`: a `KGConfig`, a dict of sections (merged over the dataset's preset), a preset
    name, or None (the preset named like the dataset, else ``default``).  With `run_dir` the run
    folder is written there (resumable: `resume`).  `progress`: see `progress_for`.  The returned
    model carries ``.metrics`` (valid/test, both rules).
    """
    data = dataset if isinstance(dataset, KGData) else load_triples(dataset)
    if isinstance(config, KGConfig):
        cfg = config if not overrides else build_config(extra=config.model_dump(mode="json"), overrides=overrides)
    elif isinstance(config, str):
        cfg = build_config(config, overrides=overrides)
    else:
        cfg = build_config(preset_for(data.name), extra=config, overrides=overrides)
    if run_dir is not None:
        _check_dest(Path(run_dir))
    folder = RunFolder(run_dir) if run_dir is not None else None
    return run(cfg, data, folder, progress=progress_for(progress)).model


def resume(run_dir: str | Path, *, progress="auto") -> KGModel:
    """Continue the interrupted KG run in `run_dir` from its checkpoint; the result (per-epoch
    objective and validation MRR, selected epoch, metrics) equals the uninterrupted run's."""
    cfg, data, folder, _ = open_for_resume(run_dir)
    return run(cfg, data, folder, resuming=True, progress=progress_for(progress)).model


def open_for_resume(run_dir: str | Path) -> tuple[KGConfig, KGData, RunFolder, dict]:
    """(config, data, folder, status) of an unfinished KG run folder; one line otherwise."""
    folder = RunFolder(run_dir)
    status = folder.read_status() if folder.file("status.json").is_file() else {}
    if status.get("run_kind") != RUN_KIND:
        raise JnskrError(f"{folder.path}: not a jnskr kg run folder (status.json has no run_kind {RUN_KIND!r})")
    if status.get("status") == "finished":
        raise JnskrError(f"{folder.path}: the run is finished; nothing to resume")
    return _read_config(folder.path), load_run_data(folder.path), folder, status


def _read_config(run_dir: Path) -> KGConfig:
    cfg_dict = read_yaml(run_dir / "config.yaml")
    try:
        return KGConfig.model_validate(cfg_dict)
    except Exception as exc:  # noqa: BLE001 - any validation problem is a bad run folder
        raise JnskrError(f"{run_dir / 'config.yaml'}: not a valid KG config ({str(exc).splitlines()[0]})") from None


def load(run_dir: str | Path) -> KGModel:
    """The trained model of a KG run folder (safetensors + JSON/YAML; nothing is unpickled)."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").exists() and (run_dir / "status.json").is_file():
        status = read_json(run_dir / "status.json")
        if isinstance(status, dict) and status.get("run_kind") == RUN_KIND:
            raise JnskrError(f"{run_dir}: the run is not finished (status {status.get('status')!r}); "
                             f"resume it with: {resume_command(run_dir)}")
    metrics = read_json(run_dir / "metrics.json")
    if not isinstance(metrics, dict) or metrics.get("run_kind") != RUN_KIND:
        raise JnskrError(f"{run_dir}: not a jnskr kg run folder (metrics.json has no run_kind {RUN_KIND!r})")
    ids = _read_ids(run_dir)
    cfg = _read_config(run_dir)
    spec = get_model(cfg.model)
    tables = load_tensors(run_dir / "model.safetensors")
    expect = spec.table_shapes(len(ids["entity_ids"]), len(ids["relation_ids"]) * (2 if cfg.reciprocal else 1),
                               cfg.dim)
    for name, shape in expect.items():
        if name not in tables or tuple(tables[name].shape) != shape:
            raise JnskrError(f"{run_dir / 'model.safetensors'}: table {name!r} missing or not of shape {shape}")
    return KGModel(spec, tables, ids["entity_ids"], ids["relation_ids"], cfg.reciprocal,
                   config=cfg.model_dump(mode="json"), metrics=metrics)


def _read_ids(run_dir: Path) -> dict:
    """id_maps.json of a KG run: {"entity_ids": [str, ...], "relation_ids": [str, ...]}."""
    path = run_dir / "id_maps.json"
    ids = read_json(path)
    if not isinstance(ids, dict):
        raise JnskrError(f"{path}: expected a JSON object with entity_ids and relation_ids")
    for key in ("entity_ids", "relation_ids"):
        labels = ids.get(key)
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise JnskrError(f"{path}: {key} must be a non-empty list of labels (strings)")
        if len(set(labels)) != len(labels):
            raise JnskrError(f"{path}: {key} holds a label twice")
    return ids


def load_run_data(run_dir: str | Path) -> KGData:
    """The train/valid/test ids and labels stored in a run folder, as a `KGData` (every array
    checked: shape [n, 3], integer ids within the id maps)."""
    run_dir = Path(run_dir)
    ids = _read_ids(run_dir)
    where = run_dir / "triples.safetensors"
    t = load_tensors(where)
    n_e, n_r = len(ids["entity_ids"]), len(ids["relation_ids"])
    splits = {}
    for split in ("train", "valid", "test"):
        x = t.get(split)
        if x is None or x.dim() != 2 or x.shape[1] != 3 or x.dtype.is_floating_point or x.dtype == torch.bool:
            raise JnskrError(f"{where}: {split} missing or not an [n, 3] integer array")
        x = x.to(torch.long)
        if x.numel() and (int(x.min()) < 0 or int(x[:, [0, 2]].max()) >= n_e or int(x[:, 1].max()) >= n_r):
            raise JnskrError(f"{where}: {split} holds ids outside the {n_e} entities / {n_r} relations of id_maps.json")
        splits[split] = x
    env = read_json(run_dir / "environment.json") if (run_dir / "environment.json").is_file() else {}
    env = env if isinstance(env, dict) else {}
    return KGData(str(env.get("dataset", run_dir.name)), ids["entity_ids"], ids["relation_ids"],
                  splits["train"], splits["valid"], splits["test"],
                  source=str(env.get("dataset_source", "")), fingerprint=str(env.get("dataset_fingerprint", "")))
