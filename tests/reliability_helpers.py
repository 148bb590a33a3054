"""Shared by the reliability tests: a small on-disk dataset, the config that early-stops and
refits, the uninterrupted reference run, and comparisons that ignore only timings."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from conftest import synthetic_dataset
from test_cli import write_kgat

#: early stop after epoch 5 (best 4), then a refit of 4 sweeps on all of train
SETS = ["device=cpu", "threads=1", "train.epochs=20", "train.batch_size=16", "eval.ks=[5,10]", "jnskr.embed_dim=8",
        "jnskr.c0=20", "jnskr.c1=20", "train.patience=1", "train.eval_every=1"]
CLI_SETS = [a for s in SETS for a in ("--set", s)]


def write_data(root: Path) -> Path:
    return write_kgat(synthetic_dataset(n_users=120, n_items=60, n_entities=100), root / "data")


def timing(key: str) -> bool:
    return key.endswith("seconds") or key.endswith("units_per_s")


def untimed(obj):
    if isinstance(obj, dict):
        return {k: untimed(v) for k, v in obj.items() if not timing(k)}
    if isinstance(obj, list):
        return [untimed(v) for v in obj]
    return obj


def log_records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def assert_same_run(ref: Path, run: Path, refit_beside: bool | None = None) -> None:
    """Bit-equal weights, identical metrics and log (timings aside), a finished status and a
    checkpoint readable without pickle.  `refit_beside`: `run`'s refit ran beside selection
    (True) or after it (False), whatever `ref`'s did (the weights are the same either way)."""
    a, b = load_file(str(ref / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in (ref, run))
    if refit_beside is not None:
        assert mb["refit"].pop("beside_selection") is refit_beside
        ma["refit"].pop("beside_selection")
    assert untimed(ma) == untimed(mb)
    assert untimed(log_records(ref)) == untimed(log_records(run))
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "finished" and status["resumable_from_epoch"] == ma["epochs_run"]
    state = torch.load(run / "checkpoint" / "trainer.pt", weights_only=True)
    assert state["state"]["epoch"] == ma["epochs_run"]
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp") or p.name.startswith("checkpoint.")]
