"""Resume and durability.  A run killed with SIGKILL (in a subprocess) resumes, from any directory,
to bit-equal weights and identical metrics and log; a diverging run stops with the epoch and batch
and says which checkpoint it keeps.  A run stopped dead at each kill point (before the first
epoch's checkpoint, inside a checkpoint's swap, between the early stop and "finished", inside the
final save, during the refit; an exception no code of jnskr catches, so nothing runs that a SIGKILL
would not run), then `--resume`d from another working directory, equals the uninterrupted run:
bit-equal weights, identical metrics and log (timings aside)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from jnskr.api import Recommender
from jnskr.cli.main import run
from jnskr.config import build_config
from jnskr.errors import JnskrError
from jnskr.training.trainer import TrainingDiverged

from conftest import REPO, synthetic_dataset
from reliability_helpers import CLI_SETS, assert_same_run, log_records, untimed, write_data
from test_cli import write_kgat

# ----------------------------------------------------------------------
# Resume and durability: a run killed with SIGKILL resumes, from any directory, to bit-equal

ARGS = ["--set", "train.epochs=60", "--set", "train.batch_size=8", "--set", "jnskr.embed_dim=16",
        "--set", "eval.ks=[5,10]", "--set", "jnskr.c0=20", "--set", "jnskr.c1=20", "--set", "train.patience=100",
        "--set", "train.checkpoint_every=1", "--device", "cpu"]


def _train(args, env, cwd=REPO):
    return subprocess.Popen([sys.executable, "-m", "jnskr", "--quiet", "train", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _ckpt_epoch(run):
    f = run / "checkpoint" / "trainer.pt"
    try:
        return int(torch.load(f, weights_only=True)["state"]["epoch"])
    except Exception:
        return 0


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path):
    write_kgat(synthetic_dataset(n_users=300, n_items=120, n_entities=200), tmp_path / "data")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = tmp_path / "full"
    p = _train(["--data", "data", "--out", "full", *ARGS], env, cwd=tmp_path)  # --data as typed: relative
    assert p.wait(timeout=600) == 0, p.stderr.read().decode()

    killed = tmp_path / "killed"
    p = _train(["--data", "data", "--out", "killed", *ARGS], env, cwd=tmp_path)
    deadline = time.time() + 300
    while _ckpt_epoch(killed) < 5 and time.time() < deadline and p.poll() is None:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert json.loads((killed / "status.json").read_text())["status"] == "running"
    assert not (killed / "metrics.json").exists()  # an interrupted run is clearly unfinished

    r = subprocess.run([sys.executable, "-m", "jnskr", "--quiet", "train", "--resume", str(killed)], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=600)  # another working directory
    assert r.returncode == 0, r.stderr
    a, b = load_file(str(full / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ma = json.loads((full / "metrics.json").read_text())
    mb = json.loads((killed / "metrics.json").read_text())
    assert untimed(ma) == untimed(mb)
    log = [json.loads(line) for line in (killed / "log.jsonl").read_text().splitlines()]
    full_log = [json.loads(line) for line in (full / "log.jsonl").read_text().splitlines()]
    assert untimed(log) == untimed(full_log)
    assert len([r for r in log if not r.get("refit")]) == ma["epochs_run"]
    assert len([r for r in log if r.get("refit")]) == (ma["refit"] or {}).get("epochs", 0)
    assert json.loads((killed / "status.json").read_text())["status"] == "finished"


def _cfg(**sets):
    over = ["device=cpu", "train.epochs=12", "train.batch_size=16", "eval.ks=[5,10]", "jnskr.embed_dim=8",
            "jnskr.c0=20", "jnskr.c1=20", "train.checkpoint_every=1"]
    return build_config("default", overrides=over + [f"{k}={v}" for k, v in sets.items()])


def test_in_process_resume_is_exact(synth, tmp_path):
    full = Recommender(_cfg()).fit(synth, run_dir=tmp_path / "full")
    part = Recommender(_cfg(**{"train.epochs": 7})).fit(synth, run_dir=tmp_path / "part")
    # turn the finished 7-epoch run into an interrupted 12-epoch run: same state after epoch 7
    (tmp_path / "part" / "metrics.json").unlink()
    (tmp_path / "part" / "status.json").write_text('{"status": "running"}')
    ckdir = tmp_path / "part" / "checkpoint"
    assert (ckdir / "trainer.pt").is_file()  # a finished run keeps its last checkpoint
    # re-run the 12-epoch config, kill it logically after epoch 7 by raising from the hook
    cfg = _cfg()

    class Stop(Exception):
        pass

    rec = Recommender(cfg)
    import jnskr.training.trainer as tr

    orig = tr.Trainer.fit

    def fit_until_7(self):
        hook = self.on_epoch_end

        def h(t, record):
            hook(t, record)
            if t.state.epoch == 7:
                raise Stop

        self.on_epoch_end = h
        return orig(self)

    tr.Trainer.fit = fit_until_7
    try:
        with pytest.raises(Stop):
            rec.fit(synth, run_dir=tmp_path / "part")
    finally:
        tr.Trainer.fit = orig
    assert (ckdir / "trainer.pt").is_file()
    resumed = Recommender(cfg).fit(synth, run_dir=tmp_path / "part", resume=True)
    for (k, va), vb in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert resumed.metrics["test"] == full.metrics["test"]
    del part


def test_divergence_reports_epoch_and_batch_and_keeps_checkpoint(synth, tmp_path):
    rec = Recommender(_cfg())
    import jnskr.models.jnskr.objective as ob

    orig = ob.JNSKRObjective.__call__

    def poisoned(self, items, epoch, *a, **k):
        loss, parts = orig(self, items, epoch, *a, **k)
        return (loss * float("nan"), parts) if epoch == 3 else (loss, parts)

    ob.JNSKRObjective.__call__ = poisoned
    try:
        with pytest.raises(TrainingDiverged, match=r"epoch 4, batch 1; .*checkpoint keeps the weights after epoch 3"):
            rec.fit(synth, run_dir=tmp_path / "run")
    finally:
        ob.JNSKRObjective.__call__ = orig
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "diverged" and status["resumable_from_epoch"] == 3
    assert (tmp_path / "run" / "checkpoint" / "model.safetensors").is_file()
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_divergence_in_the_first_epoch_says_only_the_initial_weights_are_kept(synth, tmp_path):
    import jnskr.models.jnskr.objective as ob

    orig = ob.JNSKRObjective.__call__

    def poisoned(self, items, epoch, *a, **k):
        loss, parts = orig(self, items, epoch, *a, **k)
        return loss * float("nan"), parts

    ob.JNSKRObjective.__call__ = poisoned
    try:
        with pytest.raises(TrainingDiverged, match=r"epoch 1, batch 1; .*keeps only the initial weights"):
            Recommender(_cfg(**{"train.solver": "adagrad"})).fit(synth, run_dir=tmp_path / "run")
    finally:
        ob.JNSKRObjective.__call__ = orig
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "diverged" and status["resumable_from_epoch"] == 0
    with pytest.raises(TrainingDiverged, match="no run folder: nothing was saved"):
        ob.JNSKRObjective.__call__ = poisoned
        try:
            Recommender(_cfg(**{"train.solver": "adagrad"})).fit(synth)
        finally:
            ob.JNSKRObjective.__call__ = orig


def test_resume_refuses_finished_runs_and_missing_folders(synth, tmp_path):
    Recommender(_cfg(**{"train.epochs": 2})).fit(synth, run_dir=tmp_path / "done")
    with pytest.raises(JnskrError, match="already finished"):
        Recommender.resume(tmp_path / "done")
    with pytest.raises(JnskrError, match="not found"):
        Recommender.resume(tmp_path / "nothing")


# ----------------------------------------------------------------------
# Resume after a crash at any moment: a run stopped dead at each kill point (before the first

class Killed(BaseException):
    """Stands for SIGKILL: nothing in jnskr catches a BaseException it does not know."""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Data under <root>/data, trained once without interruption into <root>/ref (cwd: root)."""
    root = tmp_path_factory.mktemp("resume")
    write_data(root)
    old = os.getcwd()
    os.chdir(root)
    try:
        assert run(["-q", "train", "--data", "data", "--out", "ref", *CLI_SETS]) == 0
    finally:
        os.chdir(old)
    return root


def _kill_first_epoch(monkeypatch):
    import jnskr.training.trainer as tr

    orig = tr.Trainer.train_epoch

    def train_epoch(self, epoch):
        if self.validate is not None and epoch == 0:
            raise Killed
        return orig(self, epoch)

    monkeypatch.setattr(tr.Trainer, "train_epoch", train_epoch)


def _kill_in_checkpoint_swap(monkeypatch):
    """After epoch 3's checkpoint is complete in checkpoint.new/, before the swap."""
    import jnskr.training.checkpoint as ck

    orig = ck.atomic_write

    def atomic_write(path, write):
        orig(path, write)
        if path.name == "trainer.pt" and path.parent.name == "checkpoint.new":
            import torch

            if torch.load(path, weights_only=True)["state"]["epoch"] == 3:
                raise Killed

    monkeypatch.setattr(ck, "atomic_write", atomic_write)


def _kill_after_early_stop(monkeypatch):
    import jnskr.pipeline as pl

    def refit(*a, **k):
        raise Killed

    monkeypatch.setattr(pl, "refit", refit)  # the refit after selection
    monkeypatch.setattr(pl, "finish_lockstep", refit)  # the end of the refit that ran beside selection


def _kill_in_final_save(monkeypatch):
    """model.safetensors of the final model written; structure, metrics and status not."""
    from jnskr.runs import RunFolder

    def save_structure(self, tensors):
        raise Killed

    monkeypatch.setattr(RunFolder, "save_structure", save_structure)


def _kill_in_refit(monkeypatch):
    import jnskr.training.trainer as tr

    orig = tr.Trainer.train_epoch

    def train_epoch(self, epoch):
        if self.validate is None and epoch == 2:
            raise Killed
        return orig(self, epoch)

    monkeypatch.setattr(tr.Trainer, "train_epoch", train_epoch)


SEQUENTIAL = ["--set", "train.refit_parallel=false"]  # the refit after selection instead of beside it


KILL_POINTS = {  # name: (patch, the epoch status.json names (None: the early stop's epoch), extra args)
    "before_first_checkpoint": (_kill_first_epoch, 0, []),
    "inside_checkpoint_swap": (_kill_in_checkpoint_swap, 2, []),
    "between_early_stop_and_finish": (_kill_after_early_stop, None, []),
    "between_early_stop_and_sequential_refit": (_kill_after_early_stop, None, SEQUENTIAL),
    "inside_final_save": (_kill_in_final_save, None, []),
    "during_refit": (_kill_in_refit, None, []),
    "during_sequential_refit": (_kill_in_refit, None, SEQUENTIAL),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_anywhere_resumes_from_another_directory_to_the_same_run(world, point, monkeypatch, tmp_path):
    patch, resumable, extra = KILL_POINTS[point]
    if resumable is None:
        resumable = json.loads((world / "ref" / "metrics.json").read_text())["epochs_run"]
    monkeypatch.chdir(world)
    out = tmp_path / "killed"
    with monkeypatch.context() as m:
        patch(m)
        with pytest.raises(Killed):
            run(["-q", "train", "--data", "data", "--out", str(out), *CLI_SETS, *extra])
    status = json.loads((out / "status.json").read_text())
    assert status == {"status": "running", "resumable_from_epoch": resumable}
    assert not (out / "metrics.json").exists() or point == "inside_final_save"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the run recorded its data by absolute path
    assert run(["-q", "train", "--resume", str(out)]) == 0
    assert_same_run(world / "ref", out, refit_beside=False if extra else None)


def test_run_records_data_by_absolute_path_and_fingerprint(world):
    import yaml

    cfg = yaml.safe_load((world / "ref" / "config.yaml").read_text())
    assert cfg["data"]["path"] == str(world / "data")
    env = json.loads((world / "ref" / "environment.json").read_text())
    assert len(env["dataset_fingerprint"]) >= 16


def test_log_has_one_record_per_epoch_and_marks_the_refit(world):
    recs = log_records(world / "ref")
    metrics = json.loads((world / "ref" / "metrics.json").read_text())
    selection = [r for r in recs if not r.get("refit")]
    refit = [r for r in recs if r.get("refit")]
    assert [r["epoch"] for r in selection] == list(range(1, metrics["epochs_run"] + 1))
    assert [r["epoch"] for r in refit] == list(range(1, metrics["refit"]["epochs"] + 1))
    assert all("recall@20" in r["valid"] for r in selection)  # eval_every=1
    assert metrics["best_epoch"] < metrics["epochs_run"]  # the early stop this file relies on


def test_timings_only_under_keys_ending_in_seconds(world):
    metrics = json.loads((world / "ref" / "metrics.json").read_text())

    def keys(d, prefix=""):
        for k, v in d.items():
            yield prefix + k
            if isinstance(v, dict):
                yield from keys(v, prefix + k + ".")

    timed = {k for k in keys(metrics) if "second" in k or "time" in k}
    assert timed and all(k.endswith("_seconds") for k in timed), timed
    assert {"train_seconds", "refit_seconds", "selection_seconds", "epoch_mean_seconds"} <= timed
