"""A signal stops training at the next batch boundary (issue 21, item 6: "SIGTERM waits for the
whole sweep"): the epoch under way is abandoned after the batch (or the sweep) in which the signal
came, the run folder is a valid interrupted run keeping the checkpoint of the last epoch written,
and `--resume` replays to the uninterrupted run, bit for bit.  Was: the epoch ran to its end (a
whole sweep: minutes on large d) before the stop.  Signals are sent by the process to itself from
inside the training step, so each case is deterministic."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest
import torch

from jnskr import stop
from jnskr.cli.main import run
from jnskr.training import checkpoint as ck
from reliability_helpers import CLI_SETS, assert_same_run, log_records, write_data

SOLVERS = {"als": [], "adagrad": ["--set", "train.solver=adagrad"]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Data under <root>/data and one uninterrupted reference run per solver."""
    root = tmp_path_factory.mktemp("boundary")
    data = write_data(root)
    for name, extra in SOLVERS.items():
        assert run(["-q", "train", "--data", str(data), "--out", str(root / name), *CLI_SETS, *extra]) == 0
    return root


class _SignalAfter:
    """Stands for the objective: sends `signum` to this process right after its batch `k`."""

    def __init__(self, inner, k: int, signum: int, calls: list):
        self.inner, self.k, self.signum, self.calls = inner, k, signum, calls

    def __call__(self, *args, **kwargs):
        out = self.inner(*args, **kwargs)
        self.calls.append("batch")
        if len(self.calls) == self.k:
            os.kill(os.getpid(), self.signum)
        return out

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _signal_inside(monkeypatch, where: str, at_epoch: int, k: int, signum: int) -> list:
    """Send `signum` during selection's epoch `at_epoch` (0-based): after its batch `k` ("batch")
    or at the end of its exact sweep ("sweep").  -> the steps of that epoch that ran."""
    import jnskr.training.trainer as tr

    orig, calls = tr.Trainer.train_epoch, []

    def train_epoch(self, epoch):
        if self.validate is not None and epoch == at_epoch:
            if where == "batch":
                self.objective = _SignalAfter(self.objective, k, signum, calls)
            else:
                inner = self.sweeps.sweep

                def sweep(e):
                    inner(e)
                    calls.append("sweep")
                    os.kill(os.getpid(), signum)

                self.sweeps.sweep = sweep
                self.objective = _SignalAfter(self.objective, 0, signum, calls)  # counts the batches after it
        return orig(self, epoch)

    monkeypatch.setattr(tr.Trainer, "train_epoch", train_epoch)
    return calls


CASES = {  # name: (solver, where the signal comes, 0-based epoch, batch k, signal, exit code)
    "sigterm_after_batch_2_adagrad": ("adagrad", "batch", 2, 2, signal.SIGTERM, 143),
    "ctrl_c_after_batch_1_adagrad": ("adagrad", "batch", 3, 1, signal.SIGINT, 130),
    "sigterm_inside_the_sweep_als": ("als", "sweep", 2, 0, signal.SIGTERM, 143),
    "sigterm_after_batch_1_of_the_als_first_order_part": ("als", "batch", 3, 1, signal.SIGTERM, 143),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_signal_inside_an_epoch_stops_at_the_next_batch_and_resumes_exactly(world, case, monkeypatch, tmp_path):
    solver, where, epoch, k, signum, code = CASES[case]
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        calls = _signal_inside(m, where, epoch, k, signum)
        assert run(["-q", "train", "--data", str(world / "data"), "--out", str(out), *CLI_SETS,
                    *SOLVERS[solver]]) == code
    # nothing ran after the step the signal came in: not one more batch, nor the first-order part
    assert calls == (["batch"] * k if where == "batch" else ["sweep"])
    # every epoch is an evaluation here (eval_every 1): the folder keeps the last completed one
    assert json.loads((out / "status.json").read_text()) == {"status": "interrupted", "resumable_from_epoch": epoch}
    assert torch.load(out / "checkpoint" / "trainer.pt", weights_only=True)["state"]["epoch"] == epoch
    assert max(r["epoch"] for r in log_records(out)) == epoch  # the abandoned epoch left no record
    assert not (out / "metrics.json").exists()
    assert run(["-q", "train", "--resume", str(out)]) == 0
    assert_same_run(world / solver, out)


@pytest.mark.parametrize("cheap", [0.0, float("inf")])
def test_between_evaluations_the_folder_keeps_the_last_checkpoint_written(world, cheap, monkeypatch, tmp_path):
    """eval_every 2: with every epoch worth a checkpoint (CHEAP 0) the stop in epoch 4 keeps epoch 3;
    with none (CHEAP inf) only evaluations (2, 4, ...) and the first epoch are: it keeps epoch 2.
    Either resumes exactly."""
    sets = [*CLI_SETS, "--set", "train.eval_every=2", *SOLVERS["adagrad"]]
    ref = tmp_path / "ref"
    assert run(["-q", "train", "--data", str(world / "data"), "--out", str(ref), *sets]) == 0
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(ck, "CHEAP", cheap)
        _signal_inside(m, "batch", 3, 1, signal.SIGTERM)
        assert run(["-q", "train", "--data", str(world / "data"), "--out", str(out), *sets]) == 143
    kept = 3 if cheap == 0 else 2
    assert json.loads((out / "status.json").read_text()) == {"status": "interrupted", "resumable_from_epoch": kept}
    assert run(["-q", "train", "--resume", str(out)]) == 0
    assert_same_run(ref, out)


def test_worth_a_checkpoint(tmp_path):
    c = ck.Checkpointer(tmp_path)
    assert c.worth(0.0)  # no save timed yet
    c.seconds = 0.05
    assert not c.worth(0.05 * ck.CHEAP - 1e-6) and c.worth(0.05 * ck.CHEAP)


def test_boundary_raises_only_where_a_prompt_stop_was_asked_for():
    stop.boundary()  # no handlers, no request: nothing
    with stop.handle_signals():
        with pytest.raises(stop.Interrupted) as got, stop.deferred(prompt=True):
            stop.boundary()
            os.kill(os.getpid(), signal.SIGTERM)  # asks; the handler returns
            assert stop.requested() == signal.SIGTERM
            seen = []  # another thread's boundary is not where the main thread stops
            t = threading.Thread(target=lambda: (stop.boundary(), seen.append(True)))
            t.start()
            t.join()
            assert seen == [True]
            stop.boundary()
            pytest.fail("boundary() did not raise")
        assert got.value.signum == signal.SIGTERM and got.value.exit_code == 143
    with stop.handle_signals():  # torchrun, kg train: at the end of the epoch, not at a batch
        with pytest.raises(stop.Interrupted), stop.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            stop.boundary()
            reached = True
        assert reached


def test_a_cancelled_thread_raises_at_its_boundary():
    event, out = threading.Event(), []

    def work():
        with stop.cancellable(event):
            stop.boundary()
            event.set()
            try:
                stop.boundary()
            except stop.Cancelled:
                out.append("cancelled")
        stop.boundary()  # outside: nothing
        out.append("after")

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert out == ["cancelled", "after"]


def test_a_signal_during_an_evaluation_keeps_that_epoch(world, monkeypatch, tmp_path):
    """The epoch's batches are done: its evaluation ends, it is checkpointed, then the run stops."""
    import jnskr.pipeline as pl

    orig, seen = pl.evaluate, []

    def evaluate(*args, **kwargs):
        seen.append(1)
        if len(seen) == 3:  # selection's evaluation after epoch 3
            os.kill(os.getpid(), signal.SIGTERM)
        return orig(*args, **kwargs)

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(pl, "evaluate", evaluate)
        assert run(["-q", "train", "--data", str(world / "data"), "--out", str(out), *CLI_SETS]) == 143
    assert json.loads((out / "status.json").read_text()) == {"status": "interrupted", "resumable_from_epoch": 3}
    assert run(["-q", "train", "--resume", str(out)]) == 0
    assert_same_run(world / "als", out)


def test_a_signal_between_a_sweeps_blocks_stops_before_the_next_block(world, monkeypatch, tmp_path):
    """als (JNSKR): the signal comes as the user block of selection's third sweep ends; the item
    bases are not solved in that sweep (was: the whole sweep ran first) and the run resumes exactly."""
    from jnskr.models.mf.problem import CFProblem

    main, seen = threading.main_thread(), []
    solve_users, item_system = CFProblem.solve_users, CFProblem.item_system

    def users(self, *a, **k):
        out = solve_users(self, *a, **k)
        if threading.current_thread() is main:  # selection (the refit may run beside it)
            seen.append("users")
            if seen.count("users") == 3:
                os.kill(os.getpid(), signal.SIGTERM)
        return out

    def items(self, *a, **k):
        if threading.current_thread() is main:
            seen.append("items")
        return item_system(self, *a, **k)

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(CFProblem, "solve_users", users)
        m.setattr(CFProblem, "item_system", items)
        assert run(["-q", "train", "--data", str(world / "data"), "--out", str(out), *CLI_SETS]) == 143
    assert seen == ["users", "items"] * 2 + ["users"]
    assert json.loads((out / "status.json").read_text()) == {"status": "interrupted", "resumable_from_epoch": 2}
    assert run(["-q", "train", "--resume", str(out)]) == 0
    assert_same_run(world / "als", out)
