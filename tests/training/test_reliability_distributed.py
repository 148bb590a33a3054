"""Distributed runs speak with one voice: rank 0 alone logs and writes one run folder, and the
losses it logs are global -- the single-process losses, not rank 0's share of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch.multiprocessing as mp

from conftest import REPO, synthetic_dataset
from test_distributed import _free_port

OVERRIDES = ["device=cpu", "train.epochs=4", "train.batch_size=16", "eval.ks=[5,10]", "jnskr.embed_dim=8",
             "jnskr.c0=20", "jnskr.c1=20", "train.eval_every=2", "train.solver=adagrad", "train.refit=false"]
LOSS_KEYS = ("loss", "cf", "kg")


def _worker(rank, world, port, out):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    from jnskr.api import Recommender
    from jnskr.config import build_config

    Recommender(build_config("default", overrides=OVERRIDES)).fit(synthetic_dataset(), run_dir=out)
    dist.destroy_process_group()


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_two_ranks_log_the_single_process_loss(tmp_path):
    from jnskr.api import Recommender
    from jnskr.config import build_config

    single = tmp_path / "single"
    Recommender(build_config("default", overrides=OVERRIDES)).fit(synthetic_dataset(), run_dir=single)
    multi = tmp_path / "multi"
    mp.spawn(_worker, args=(2, _free_port(), str(multi)), nprocs=2, join=True)
    a, b = _log(single), _log(multi)
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b] == [1, 2, 3, 4]
    for ra, rb in zip(a, b):
        for k in LOSS_KEYS:
            assert rb[k] == pytest.approx(ra[k], rel=1e-4), (ra["epoch"], k, ra[k], rb[k])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi", "single"]


def test_local_strategy_terms_count_once():
    """Single process: `once` and `sum_values` change nothing (the goldens rely on it)."""
    import torch

    from jnskr.parallel import LocalStrategy

    st = LocalStrategy()
    t = torch.tensor(2.5, requires_grad=True)
    assert st.once(t) is t and st.sum_values({"loss": 1.5}) == {"loss": 1.5} and st.any_rank(True)


@pytest.mark.slow
def test_torchrun_cli_one_voice_one_folder(tmp_path):
    from test_cli import write_kgat

    data = write_kgat(synthetic_dataset(), tmp_path / "data")
    sets = [a for o in OVERRIDES for a in ("--set", o)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port",
                        str(_free_port()), "-m", "jnskr", "train", "--data", str(data), *sets], cwd=work, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = list((work / "runs").iterdir())
    assert len(runs) == 1, runs  # one default run folder, named by rank 0
    ours = [ln for ln in r.stderr.splitlines() if ln.startswith(("INFO ", "WARNING ", "error:"))]
    assert sum(ln.startswith("INFO training jnskr") for ln in ours) == 1, r.stderr
    assert r.stdout.count("run saved to") == 1, r.stdout
    single = tmp_path / "single"
    s = subprocess.run([sys.executable, "-m", "jnskr", "-q", "train", "--data", str(data), "--out", str(single),
                        *sets], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert s.returncode == 0, s.stderr
    for ra, rb in zip(_log(single), _log(runs[0])):
        assert ("loss" in rb) == ("loss" in ra)
        if "loss" in ra:
            assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-4)
