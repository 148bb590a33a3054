"""Ctrl-C and SIGTERM: training stops at the next batch boundary, abandoning the epoch under way
(a signal at an epoch's start: that epoch runs no batch), the last checkpoint is kept, status.json
says "interrupted", the resume command is printed (a WARNING record) and the exit code is 128 +
the signal; a second signal stops at once, keeping the last checkpoint; `--resume` then gives the
uninterrupted run (signals inside an epoch: tests/training/test_stop_boundary.py).  Signals are sent by
the process to itself at chosen moments, so each case is deterministic."""

from __future__ import annotations

import json
import os
import signal

import pytest

from jnskr.cli.main import run
from reliability_helpers import CLI_SETS, assert_same_run, write_data

LEVELS = ("error:", "DEBUG ", "INFO ", "WARNING ", "ERROR ", "CRITICAL ")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt")
    data = write_data(root)
    assert run(["-q", "train", "--data", str(data), "--out", str(root / "ref"), *CLI_SETS]) == 0
    return root


def _signal_at(monkeypatch, signals: list[int], phase: str, at_epoch: int):
    """Send `signals` to this process at the start of epoch `at_epoch` (0-based) of `phase`."""
    import jnskr.training.trainer as tr

    orig = tr.Trainer.train_epoch

    def train_epoch(self, epoch):
        in_phase = (self.validate is not None) == (phase == "selection")
        if in_phase and epoch == at_epoch and signals:
            for s in signals:
                os.kill(os.getpid(), s)
            signals.clear()
        return orig(self, epoch)

    monkeypatch.setattr(tr.Trainer, "train_epoch", train_epoch)


def _stderr_lines_are_records(err: str) -> list[str]:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert all(ln.startswith(LEVELS) for ln in lines), err
    return lines


SEQUENTIAL = ["--set", "train.refit_parallel=false"]  # the refit after selection instead of beside it
CASES = {  # name: (signals, phase, 0-based epoch, exit code, epoch the checkpoint holds, extra args)
    "ctrl_c_stops_at_the_next_batch": ([signal.SIGINT], "selection", 1, 130, 1, []),
    "sigterm_stops_at_the_next_batch": ([signal.SIGTERM], "selection", 2, 143, 2, []),
    "second_ctrl_c_stops_at_once": ([signal.SIGINT, signal.SIGINT], "selection", 3, 130, 3, []),
    # None: the selection's last epoch
    "ctrl_c_during_sequential_refit": ([signal.SIGINT], "refit", 1, 130, None, SEQUENTIAL),
    # the refit's epoch 2 runs beside selection's epoch 3 or later: selection stops at its next batch
    "ctrl_c_during_refit_beside_selection": ([signal.SIGINT], "refit", 1, 130, "any", ["--set", "train.refit_parallel=true"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_interrupt_checkpoints_says_how_to_resume_and_resumes_exactly(world, case, monkeypatch, tmp_path, capsys):
    signals, phase, epoch, code, kept, extra = CASES[case]
    epochs_run = json.loads((world / "ref" / "metrics.json").read_text())["epochs_run"]
    if kept is None:
        kept = epochs_run
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _signal_at(m, list(signals), phase, epoch)
        assert run(["train", "--data", str(world / "data"), "--out", str(out), *CLI_SETS, *extra]) == code
    if kept == "any":
        kept = json.loads((out / "status.json").read_text())["resumable_from_epoch"]
        assert 2 <= kept <= epochs_run
    lines = _stderr_lines_are_records(capsys.readouterr().err)
    hint = [ln for ln in lines if "resume with: jnskr train --resume" in ln]
    assert len(hint) == 1 and hint[0].startswith("WARNING ") and str(out) in hint[0], lines
    assert json.loads((out / "status.json").read_text()) == {"status": "interrupted", "resumable_from_epoch": kept}
    import torch

    assert torch.load(out / "checkpoint" / "trainer.pt", weights_only=True)["state"]["epoch"] == kept
    assert not (out / "metrics.json").exists()
    assert run(["-q", "train", "--resume", str(out)]) == 0
    assert_same_run(world / "ref", out, refit_beside=("train.refit_parallel=true" in extra) if extra else None)


def test_interrupt_before_training_writes_nothing(world, monkeypatch, tmp_path, capsys):
    import jnskr.cli.train as ct

    orig = ct._load_data

    def load(cfg):
        os.kill(os.getpid(), signal.SIGTERM)
        return orig(cfg)

    monkeypatch.setattr(ct, "_load_data", load)
    out = tmp_path / "run"
    assert run(["train", "--data", str(world / "data"), "--out", str(out), *CLI_SETS]) == 143
    lines = _stderr_lines_are_records(capsys.readouterr().err)
    assert lines == ["WARNING interrupted by SIGTERM"]
    assert not out.exists()


def test_library_keyboard_interrupt_marks_the_run_and_resumes(world, monkeypatch, tmp_path):
    """Without the CLI's handlers, Ctrl-C is a KeyboardInterrupt: the run is marked and it propagates."""
    import jnskr.training.trainer as tr
    from jnskr.api import Recommender
    from jnskr.config import build_config
    from jnskr.data import load_dataset
    from reliability_helpers import SETS

    orig = tr.Trainer.train_epoch

    def train_epoch(self, epoch):
        if self.validate is not None and epoch == 2:
            raise KeyboardInterrupt
        return orig(self, epoch)

    cfg = build_config("default", overrides=SETS + [f"data.path={world / 'data'}", "data.dataset=null"])
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(tr.Trainer, "train_epoch", train_epoch)
        with pytest.raises(KeyboardInterrupt):
            Recommender(cfg).fit(load_dataset(str(world / "data")), run_dir=out)
    assert json.loads((out / "status.json").read_text()) == {"status": "interrupted", "resumable_from_epoch": 2}
    Recommender.resume(out)
    assert_same_run(world / "ref", out)
