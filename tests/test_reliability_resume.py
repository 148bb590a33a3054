"""Resume after a crash at any moment: a run stopped dead at each kill point (before the first
epoch's checkpoint, inside a checkpoint's swap, between the early stop and "finished", inside
the final save, during the refit), then `--resume`d from another working directory, equals the
uninterrupted run: bit-equal weights, identical metrics and log (timings aside).

Here the "kill" is an exception no code of jnskr catches (so nothing runs that a SIGKILL would
not run); tests/test_resume.py does the same with a real SIGKILL in a subprocess."""

from __future__ import annotations

import json
import os

import pytest

from jnskr.cli.main import run
from reliability_helpers import CLI_SETS, assert_same_run, log_records, write_data


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
