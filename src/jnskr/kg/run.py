"""KG run folders and the Python entry points `train` and `load`.

A run folder holds (each file written through a temporary file and a rename; the folder itself
is assembled beside its destination and renamed into place, so a crash leaves no partial run)::

    model.safetensors     the tables (entity / relation, or head / relation / tail for CP)
    triples.safetensors   train / valid / test as int64 ids (re-evaluation needs no data folder)
    id_maps.json          {"entity_ids": [...], "relation_ids": [...]}: raw label of each id
    config.yaml           the resolved configuration
    metrics.json          valid and test metrics under both unseen-entity rules, best epoch, timings
    log.jsonl             one line per epoch: objective F, seconds, validation MRR when evaluated
    environment.json      versions, git commit, seed, CPU model, threads, dataset fingerprint
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from jnskr.errors import JnskrError
from jnskr.kg.config import KGConfig, build_config, preset_for
from jnskr.kg.data import KGData
from jnskr.kg.datasets import load_triples
from jnskr.kg.models import KGModel, get_model
from jnskr.kg.trainer import FitResult, fit
from jnskr.runs import atomic_write_text, environment, load_tensors, read_json, read_yaml, save_tensors, \
    write_json, write_yaml

__all__ = ["train", "load", "save_run", "load_run_data", "cpu_model", "default_run_dir"]

RUN_KIND = "jnskr-kg"


def cpu_model() -> str | None:
    """The CPU's model name (/proc/cpuinfo, else lscpu), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import subprocess

    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def default_run_dir(dataset: str, model: str) -> Path:
    return Path("runs") / f"kg-{dataset.lower()}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def _check_dest(run_dir: Path) -> None:
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise JnskrError(f"{run_dir}: exists and is not an empty folder; choose another --out")


def save_run(run_dir: str | Path, cfg: KGConfig, data: KGData, result: FitResult) -> Path:
    """Write a complete run folder for `result` (see the module docstring); return its path."""
    run_dir = Path(run_dir)
    _check_dest(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", suffix=".tmp", dir=run_dir.parent))
    try:
        save_tensors(tmp / "model.safetensors", result.model.tables)
        save_tensors(tmp / "triples.safetensors", {"train": data.train, "valid": data.valid, "test": data.test})
        write_json(tmp / "id_maps.json", {"entity_ids": data.entity_ids, "relation_ids": data.relation_ids})
        write_yaml(tmp / "config.yaml", cfg.model_dump(mode="json"))
        atomic_write_text(tmp / "log.jsonl", "".join(json.dumps(r) + "\n" for r in result.history))
        env = environment("cpu", cfg.seed, data.fingerprint, extra={
            "run_kind": RUN_KIND, "cpu_model": cpu_model(), "dataset": data.name, "dataset_source": data.source,
            "dataset_stats": data.stats(), "dataset_notes": data.notes})
        write_json(tmp / "environment.json", env)
        write_json(tmp / "metrics.json", {"run_kind": RUN_KIND, "dataset": data.name, "model": cfg.model,
                                          **result.metrics})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 -> what mkdir would have made
        if run_dir.exists():
            run_dir.rmdir()
        os.replace(tmp, run_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return run_dir


def train(config: KGConfig | dict | str | None = None, dataset: KGData | str | Path = "nations",
          run_dir: str | Path | None = None, *, overrides: list[str] | None = None) -> KGModel:
    """Fit a KG embedding on `dataset` (a `KGData`, a folder, or a registered name) and return it.

    `config`: a `KGConfig`, a dict of sections (merged over the dataset's preset), a preset
    name, or None (the preset named like the dataset, else ``default``).  With `run_dir` the run
    folder is written there.  The returned model carries ``.metrics`` (valid/test, both rules).
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
    result = fit(cfg, data)
    if run_dir is not None:
        save_run(run_dir, cfg, data, result)
    result.model.config = cfg.model_dump(mode="json")
    return result.model


def load(run_dir: str | Path) -> KGModel:
    """The trained model of a KG run folder (safetensors + JSON/YAML; nothing is unpickled)."""
    run_dir = Path(run_dir)
    metrics = read_json(run_dir / "metrics.json")
    if not isinstance(metrics, dict) or metrics.get("run_kind") != RUN_KIND:
        raise JnskrError(f"{run_dir}: not a jnskr kg run folder (metrics.json has no run_kind {RUN_KIND!r})")
    ids = _read_ids(run_dir)
    cfg_dict = read_yaml(run_dir / "config.yaml")
    try:
        cfg = KGConfig.model_validate(cfg_dict)
    except Exception as exc:  # noqa: BLE001 - any validation problem is a bad run folder
        raise JnskrError(f"{run_dir / 'config.yaml'}: not a valid KG config ({str(exc).splitlines()[0]})") from None
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
