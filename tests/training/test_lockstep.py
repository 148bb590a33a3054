"""The refit beside selection (training/lockstep.py): the same model, bit for bit, as the refit
after selection; its failures reach the caller; when it is used."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from torch import nn

from conftest import synthetic_dataset
from reliability_helpers import SETS, assert_same_run
from jnskr.api import Recommender
from jnskr.config import build_config
from jnskr.training import lockstep as ls
from jnskr.training.lockstep import Lockstep, use_lockstep
from jnskr.training.trainer import TrainState

MODELS = {  # name: extra --set items (each refits with its own solver)
    "jnskr-als": [],
    "jnskr-adagrad": ["train.solver=adagrad", "train.eval_every=2"],
    "enmf-als": ["model=enmf", "enmf.embed_dim=8"],
    "lightgcn": ["model=lightgcn", "lightgcn.embed_dim=8", "train.eval_every=2"],
}


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(n_users=120, n_items=60, n_entities=100)


def _fit(data, path, extra, parallel: bool):
    cfg = build_config(overrides=[*SETS, *extra, f"train.refit_parallel={str(parallel).lower()}"])
    return Recommender(cfg).fit(data, run_dir=path, progress=False)


@pytest.mark.parametrize("name", list(MODELS))
def test_refit_beside_selection_is_bit_equal_to_the_refit_after(data, name, tmp_path):
    _fit(data, tmp_path / "after", MODELS[name], parallel=False)
    rec = _fit(data, tmp_path / "beside", MODELS[name], parallel=True)
    assert rec.metrics["refit"]["beside_selection"] is True
    assert rec.metrics["refit"]["epochs"] >= 1
    # weights, metrics (but the flag) and every log record (the refit's included) are the same
    assert_same_run(tmp_path / "after", tmp_path / "beside", refit_beside=True)
    assert not [t for t in threading.enumerate() if t.name == "jnskr-refit"]


def _fail(monkeypatch, in_refit: bool, epoch: int, exc: Exception) -> None:
    """Make epoch `epoch` of the refit (or of selection) raise `exc`."""
    import jnskr.training.trainer as tr

    orig = tr.Trainer.train_epoch

    def train_epoch(self, e):
        if (self.validate is None) == in_refit and e == epoch:
            raise exc
        return orig(self, e)

    monkeypatch.setattr(tr.Trainer, "train_epoch", train_epoch)


def test_a_failure_in_the_refit_thread_reaches_the_caller(data, tmp_path, monkeypatch):
    _fail(monkeypatch, in_refit=True, epoch=1, exc=ValueError("refit broke"))
    with pytest.raises(ValueError, match="refit broke"):
        _fit(data, tmp_path / "run", [], parallel=True)
    assert not [t for t in threading.enumerate() if t.name == "jnskr-refit"]


def test_a_failure_in_selection_stops_the_refit_thread(data, tmp_path, monkeypatch):
    _fail(monkeypatch, in_refit=False, epoch=2, exc=RuntimeError("selection broke"))
    with pytest.raises(RuntimeError, match="selection broke"):
        _fit(data, tmp_path / "run", [], parallel=True)
    assert not [t for t in threading.enumerate() if t.name == "jnskr-refit"]


class _Counting:
    """A stand-in refit trainer: after epoch k its one weight is k."""

    def __init__(self):
        self.model = nn.Linear(1, 1, bias=False)
        self.state = TrainState()
        self.ran: list[int] = []

    def train_epoch(self, epoch):
        with torch.no_grad():
            self.model.weight.fill_(epoch + 1.0)
        self.ran.append(epoch)
        return {"epoch": epoch + 1}


@pytest.mark.parametrize("stop_at", [4, 7])
def test_lockstep_hands_back_the_weights_after_the_best_epoch(stop_at):
    tr = _Counting()
    lk = Lockstep(tr).start()
    best = 0
    for e in range(1, stop_at + 1):  # best at 2 and 4; selection stops at `stop_at`
        best = e if e in (2, 4) else best
        lk.selection_epoch(e, best)
    records = lk.finish(best)
    assert float(tr.model.weight.detach()) == 4.0 and tr.state.epoch == 4
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert tr.ran[:4] == [0, 1, 2, 3] and max(tr.ran) < stop_at  # never ahead of selection


def test_lockstep_runs_on_to_the_target_and_starts_from_a_resumed_selection():
    tr = _Counting()
    lk = Lockstep(tr, allowed=6, best=5).start()  # resumed after epoch 6, best 5
    records = lk.finish(5)
    assert float(tr.model.weight.detach()) == 5.0 and len(records) == 5
    tr2 = _Counting()
    lk2 = Lockstep(tr2).start()
    lk2.selection_epoch(1, 1)
    assert lk2.finish(3)[-1]["epoch"] == 3 and float(tr2.model.weight.detach()) == 3.0  # beyond what was allowed


class _Slow(_Counting):
    """An epoch of 500 batches of 10 ms, each after a batch boundary (as the trainer's)."""

    def __init__(self):
        super().__init__()
        self.started = threading.Event()

    def train_epoch(self, epoch):
        from jnskr import stop

        self.started.set()
        for _ in range(500):
            stop.boundary()
            time.sleep(0.01)
        return super().train_epoch(epoch)


def test_cancel_stops_the_refit_at_its_next_batch_not_at_the_end_of_its_epoch():
    """Selection interrupted (or failed) while the refit thread is in a long epoch: `cancel`
    returns at the thread's next batch boundary.  Was: it waited for the epoch's end (a whole
    sweep, minutes on large d)."""
    tr = _Slow()
    lk = Lockstep(tr).start()
    lk.selection_epoch(1, 1)
    assert tr.started.wait(30)
    t0 = time.perf_counter()
    lk.cancel()
    assert time.perf_counter() - t0 < 2.5  # the epoch takes 5 s
    assert not lk.thread.is_alive() and tr.ran == []


def test_cancel_stops_a_waiting_thread():
    lk = Lockstep(_Counting()).start()
    lk.cancel()
    assert not lk.thread.is_alive()
    lk.cancel()  # again, once ended: nothing to do
    Lockstep(_Counting()).cancel()  # never started (selection failed before it): nothing to do


def test_when_it_is_used(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(ls, "usable_cores", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert use_lockstep(None, cpu, 1)
    assert not use_lockstep(None, cpu, 1, room=False)  # two models would not fit the memory limit
    assert use_lockstep(True, cpu, 1, room=False)  # asked for
    assert not use_lockstep(None, cuda, 1)
    assert not use_lockstep(None, cpu, 2)  # torchrun
    assert not use_lockstep(False, cpu, 1)
    assert use_lockstep(True, cuda, 1)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # the core is torch's already
    assert not use_lockstep(None, cpu, 1)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    monkeypatch.setattr(ls, "usable_cores", lambda: 1)
    assert not use_lockstep(None, cpu, 1)


def test_no_catch_warnings_where_the_refit_thread_runs():
    """`warnings.catch_warnings` swaps process-wide state: entered by the refit thread (term sums,
    LightGCN's propagation) it swallowed the selection thread's "validation is falling" warning.
    Code that training runs must not enter it (jnskr.ops silences torch's one-time sparse
    warnings once, at import)."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src" / "jnskr"
    files = [*(src / "training").rglob("*.py"), *(src / "models").rglob("*.py"), *(src / "losses").rglob("*.py"),
             *(src / "evaluation").rglob("*.py"), src / "interactions.py", src / "parallel.py"]
    assert [f.name for f in files if "catch_warnings" in f.read_text()] == []
    ops = (src / "ops.py").read_text()
    assert ops.count("catch_warnings()") == 1 and "_silence_sparse_warnings()\n" in ops


def test_no_refit_beside_selection_without_memory_for_two(data, tmp_path):
    """data.max_memory_gb between one and two models' estimate: the refit runs after selection."""
    from jnskr.pipeline import prepare
    from jnskr.sizing import Sizes, check_memory

    cfg = build_config(overrides=[*SETS])
    kg = prepare(cfg, data).item_kg
    need = check_memory(cfg, Sizes(data.n_users, data.n_items, kg.n_tails, kg.n_relations, kg.n_facts))
    limit_gb = 1.5 * need / 1e9
    rec = Recommender(build_config(overrides=[*SETS, f"data.max_memory_gb={limit_gb:.9f}"])).fit(data, progress=False)
    assert rec.metrics["refit"]["beside_selection"] is False
