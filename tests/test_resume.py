"""Resume and durability: a run killed with SIGKILL resumes, from any directory, to bit-equal
weights and identical metrics and log; a diverging run stops with the epoch and batch and says
which checkpoint it keeps.  (More kill points: tests/test_reliability_resume.py.)"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, synthetic_dataset
from reliability_helpers import untimed
from jnskr.api import Recommender
from jnskr.config import build_config
from jnskr.errors import JnskrError
from jnskr.training.trainer import TrainingDiverged
from test_cli import write_kgat

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
