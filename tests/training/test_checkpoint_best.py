"""Interrupted runs (issue 21, item 6, first part): `evaluate` / `recommend` / `serve` on an
interrupted run say "interrupted at epoch N: resume with `jnskr train --resume RUN` or use the
last checkpoint with `--checkpoint best`", and `--checkpoint best` loads the best validation
weights of model selection from the run's checkpoint folder.  Was: "structure.safetensors: not
found (is this a jnskr run folder?)", and no way to use the weights an interrupted run kept."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from jnskr.api import Recommender
from jnskr.cli.main import run
from jnskr.errors import JnskrError
from reliability_helpers import CLI_SETS, write_data


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished run and one interrupted after epoch 3 (KeyboardInterrupt in epoch 4)."""
    import jnskr.training.trainer as tr

    root = tmp_path_factory.mktemp("best")
    data = write_data(root)
    assert run(["-q", "train", "--data", str(data), "--out", str(root / "done"), *CLI_SETS]) == 0
    orig = tr.Trainer.train_epoch

    def train_epoch(self, epoch):
        if self.validate is not None and epoch == 3:
            raise KeyboardInterrupt
        return orig(self, epoch)

    tr.Trainer.train_epoch = train_epoch
    try:
        assert run(["-q", "train", "--data", str(data), "--out", str(root / "cut"), *CLI_SETS]) == 130
    finally:
        tr.Trainer.train_epoch = orig
    assert json.loads((root / "cut" / "status.json").read_text())["status"] == "interrupted"
    return root


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err, err
    return " ".join(err.split())


@pytest.mark.parametrize("args", [["evaluate"], ["recommend", "--user", "0"], ["similar", "--item", "0"]])
def test_an_interrupted_run_says_how_to_use_it(runs, args, capsys):
    cut = runs / "cut"
    assert run([args[0], str(cut), *args[1:]]) == 2
    msg = _one_error(capsys)
    assert (f"interrupted at epoch 3: resume with `jnskr train --resume {cut}` or use the last checkpoint with "
            "`--checkpoint best`") in msg
    with pytest.raises(JnskrError, match="interrupted at epoch 3"):
        from jnskr.serve.engine import Engine  # what `jnskr serve` loads

        Engine.load(cut)


def test_checkpoint_best_uses_the_best_weights_of_an_interrupted_run(runs, capsys):
    cut = runs / "cut"
    assert run(["evaluate", str(cut), "--checkpoint", "best"]) == 0
    assert "test @5" in capsys.readouterr().out
    assert run(["recommend", str(cut), "--user", "0", "--k", "3", "--checkpoint", "best"]) == 0
    assert "rank" in capsys.readouterr().out
    rec = Recommender.load(cut, checkpoint="best")
    best = load_file(str(cut / "checkpoint" / "best.safetensors"))
    for k, v in rec.model.state_dict().items():
        assert torch.equal(v.cpu(), best[k]), k
    state = torch.load(cut / "checkpoint" / "trainer.pt", weights_only=True)["state"]
    assert rec.metrics["best_epoch"] == state["best_epoch"] and rec.metrics["valid"] == state["best_valid"]
    capsys.readouterr()
    assert run(["evaluate", str(cut), "--checkpoint", "last"]) == 2
    assert "expected final or best" in _one_error(capsys)


def test_checkpoint_best_of_a_finished_run_is_its_selection_model(runs):
    done = runs / "done"
    final, best = Recommender.load(done), Recommender.load(done, checkpoint="best")
    metrics = json.loads((done / "metrics.json").read_text())
    assert best.metrics["valid"] == metrics["valid"] and best.metrics["best_epoch"] == metrics["best_epoch"]
    assert not torch.equal(final.model.state_dict()["user_emb"], best.model.state_dict()["user_emb"])  # refit


def test_a_folder_without_best_weights_is_one_line(runs, tmp_path, capsys):
    import shutil

    cut = tmp_path / "cut"
    shutil.copytree(runs / "cut", cut)
    (cut / "checkpoint" / "best.safetensors").unlink()
    assert run(["evaluate", str(cut), "--checkpoint", "best"]) == 2
    assert "no best weights yet" in _one_error(capsys)
    (cut / "selection.safetensors").unlink()
    assert run(["evaluate", str(cut), "--checkpoint", "best"]) == 2
    assert "predates `--checkpoint best`" in _one_error(capsys)
