"""Saving a trained run into its folder and loading it back (safetensors + YAML/JSON, no pickle)."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from jnskr.config import config_to_dict, validate_config
from jnskr.data.dataset import Interactions
from jnskr.data.kg import ItemKG
from jnskr.errors import JnskrError
from jnskr.ids import IdMaps
from jnskr.models import ModelData, get
from jnskr.runs import RunFolder, environment, load_tensors, save_tensors
from jnskr.sizing import Sizes, check_memory


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise JnskrError("--device cuda: CUDA is not available on this machine")
    return torch.device(name)


@dataclass
class RunResult:
    """What `run` returns: the trained model and everything the query API and the run folder need."""

    config: Config
    model: torch.nn.Module
    ids: IdMaps
    train_seen: Interactions  # every train.txt interaction (masked at recommend)
    item_counts: np.ndarray
    item_kg: ItemKG | None
    metrics: dict = field(default_factory=dict)
    trainer: Trainer | None = None
    fingerprint: str = ""
    device: torch.device = torch.device("cpu")


def _item_kg_tensors(kg: ItemKG) -> dict[str, torch.Tensor]:
    return {
        "kg_indptr": torch.from_numpy(kg.indptr),
        "kg_relations": torch.from_numpy(kg.relations),
        "kg_tails": torch.from_numpy(kg.tails),
        "kg_tail_entity": torch.from_numpy(kg.tail_entity),
        "kg_relation_source": torch.from_numpy(kg.relation_source),
    }


def _item_kg_from(t: dict[str, torch.Tensor], relation_names: list[str]) -> ItemKG:
    return ItemKG(
        indptr=t["kg_indptr"].numpy(), relations=t["kg_relations"].numpy(), tails=t["kg_tails"].numpy(),
        n_relations=len(t["kg_relation_source"]), n_tails=len(t["kg_tail_entity"]),
        tail_entity=t["kg_tail_entity"].numpy(), relation_source=t["kg_relation_source"].numpy(),
        relation_names=relation_names,
    )


def write_run_files(folder: RunFolder, r) -> None:
    cfg = config_to_dict(r.config)
    if cfg["data"].get("path"):  # by absolute path: `--resume` works from any directory
        cfg["data"]["path"] = os.path.abspath(os.path.expanduser(cfg["data"]["path"]))
    folder.write_config(cfg)
    folder.write_ids(r.ids.to_dict())
    layers = r.config.layers()  # where the config's values came from (preset, file, flags, --set)
    folder.write_environment(environment(str(r.device), r.config.seed, r.fingerprint,
                                         {"config_layers": layers} if layers else None))


def _structure(r) -> dict[str, torch.Tensor]:
    """The arrays the model of `r` and `recommend` need besides the weights."""
    struct = {
        "train_indptr": torch.from_numpy(r.train_seen.indptr),
        "train_indices": torch.from_numpy(r.train_seen.indices),
        "item_counts": torch.from_numpy(np.asarray(r.item_counts, dtype=np.int64)),
    }
    if r.train_seen.values is not None:  # confidences (data.weight: confidence): what a model built from train read
        struct["train_values"] = torch.from_numpy(np.asarray(r.train_seen.values, dtype=np.float64))
    if r.item_kg is not None:
        struct.update(_item_kg_tensors(r.item_kg))
    return struct


#: the structure of the model selection trains (its item KG is built from train minus the
#: validation holdout), written when the run starts: what `load(checkpoint="best")` builds on
SELECTION_FILE = "selection.safetensors"


def save_selection(folder: RunFolder, r) -> None:
    """Write the structure of selection's model (`SELECTION_FILE`) at the start of a run."""
    save_tensors(folder.file(SELECTION_FILE), _structure(r))


def save(folder: RunFolder, r) -> None:
    """Weights, structure and sidecars; metrics.json last (its presence marks a finished run)."""
    folder.save_model(dict(r.model.state_dict()))
    folder.save_structure(_structure(r))
    write_run_files(folder, r)
    if r.metrics:
        folder.write_metrics(r.metrics)


def refuse_unfinished(folder: RunFolder) -> None:
    """A run folder whose training has not finished (status running / interrupted / diverged,
    no metrics.json) is refused with what to do, not as "not a run folder"."""
    if folder.file("metrics.json").is_file() or not folder.file("status.json").is_file():
        return
    status = folder.read_status()
    state = status.get("status")
    if state == "diverged":
        raise JnskrError(f"{folder.path}: this run diverged ({one_line(status.get('message') or 'no details')}); "
                         "nothing was saved to load; train again with a lower train.lr")
    if state != "finished":
        run = shlex.quote(str(folder.path))
        epoch = status.get("resumable_from_epoch")
        where = f"at epoch {epoch}" if isinstance(epoch, int) else "before its first checkpoint"
        how = "interrupted" if state == "interrupted" else f"status {state} (still training, or killed)"
        raise JnskrError(f"{folder.path}: unfinished run, {how} {where}: resume with `jnskr train --resume {run}` or use the last "
                         "checkpoint with `--checkpoint best`")


def one_line(text: str) -> str:
    return " ".join(str(text).split())[:300]


def load(run_dir: str | Path, device: str | None = None, checkpoint: str = "final"):
    """A saved run, ready to score: a `jnskr.pipeline.RunResult`.  `checkpoint`: ``"final"``
    (the finished run's model) or ``"best"`` (the best validation weights of model selection so
    far, from ``checkpoint/``: also for an interrupted run; `jnskr.training.checkpoint.best_weights`)."""
    from jnskr.training.checkpoint import best_weights

    if checkpoint not in ("final", "best"):
        raise JnskrError(f"--checkpoint {checkpoint!r}: expected final or best")
    folder = RunFolder(run_dir)
    if not folder.path.is_dir():
        raise JnskrError(f"{folder.path}: no such run folder")
    if checkpoint == "final":
        refuse_unfinished(folder)
    cfg = validate_config(folder.read_config(), str(folder.file("config.yaml")))
    if device is not None:
        cfg = cfg.model_copy(update={"device": device})
    dev = resolve_device(cfg.device)
    ids = IdMaps.from_dict(folder.read_ids(), str(folder.file("id_maps.json")))
    if not (0 < ids.n_users < 2**40 and 0 < ids.n_items < 2**40):
        raise JnskrError(f"{folder.file('id_maps.json')}: n_users {ids.n_users} / n_items {ids.n_items} "
                         f"out of range")
    where = folder.file("structure.safetensors" if checkpoint == "final" else SELECTION_FILE)
    if checkpoint == "best" and not where.is_file():
        raise JnskrError(f"{where}: not found: this run folder predates `--checkpoint best` (resume it with "
                         f"`jnskr train --resume {shlex.quote(str(folder.path))}`)")
    struct = load_tensors(where)
    try:
        values = struct["train_values"].numpy() if "train_values" in struct else None
        train_seen = Interactions(struct["train_indptr"].numpy(), struct["train_indices"].numpy(), ids.n_items,
                                  values=values)
        item_counts = struct["item_counts"].numpy()
        item_kg = _item_kg_from(struct, ids.relation_names) if "kg_indptr" in struct else None
    except KeyError as exc:
        raise JnskrError(f"{where}: missing {exc}") from None
    except (ValueError, TypeError, IndexError) as exc:
        raise JnskrError(f"{where}: inconsistent arrays ({str(exc).splitlines()[0][:200]})") from None
    if len(item_counts) != ids.n_items or train_seen.n_users != ids.n_users:
        raise JnskrError(f"{where}: sized for another run than {folder.file('id_maps.json')}")
    kg_sizes = (item_kg.n_tails, item_kg.n_relations, item_kg.n_facts) if item_kg is not None else (0, 0, 0)
    check_memory(cfg, Sizes(ids.n_users, ids.n_items, *kg_sizes), dev, str(folder.file("config.yaml")))
    model = get(cfg.model).build(cfg, ModelData(ids.n_users, ids.n_items, item_counts, item_kg))
    if checkpoint == "final":
        weights, source, metrics = folder.load_model(), folder.file("model.safetensors"), folder.read_metrics()
    else:
        weights, source, state = best_weights(folder.path)
        metrics = {"checkpoint": "best", "best_epoch": state["best_epoch"], "valid": state["best_valid"],
                   "epochs_run": state["epoch"]}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        msg = str(exc).splitlines()[0][:200]
        raise JnskrError(f"{source}: does not match config.yaml ({msg})") from None
    model.to(dev).eval()
    model.use_interactions(train_seen)
    return RunResult(config=cfg, model=model, ids=ids, train_seen=train_seen, item_counts=item_counts,
                     item_kg=item_kg, metrics=metrics, device=dev)
