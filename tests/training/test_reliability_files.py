"""Run folders and files: `--out` never reuses a folder that holds files unless asked
(`--overwrite`), file-system failures are one line naming the path, a run folder appears whole
(with status.json and checkpoint/) only when training starts, every write is temp-and-rename,
and the logging on stderr is one record a line, starting with its level."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from jnskr.cli.main import run
from jnskr.errors import JnskrError
from jnskr.runs import RunFolder, atomic_write_text
from conftest import DATA

GOOD = DATA / "kgat_tiny"
FAST = ["--set", "train.epochs=2", "--set", "jnskr.embed_dim=4", "--set", "eval.ks=[1]", "--device", "cpu"]
LEVELS = ("error:", "DEBUG ", "INFO ", "WARNING ", "ERROR ", "CRITICAL ")


def _one_error(err: str, *expected: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and all(ln.startswith(LEVELS) for ln in lines), err
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, err
    for e in expected:
        assert e in errors[0], err
    return errors[0]


def _train(out, *extra) -> int:
    return run(["train", "--data", str(GOOD), "--out", str(out), *FAST, *extra])


def test_out_folder_with_files_is_refused_and_kept(tmp_path, capsys):
    """The reported loss: `mkdir n; echo mine > n/log.jsonl; jnskr train ... --out n`."""
    n = tmp_path / "n"
    n.mkdir()
    (n / "log.jsonl").write_text("mine\n")
    assert _train(n) == 2
    _one_error(capsys.readouterr().err, str(n), "not empty", "--overwrite")
    assert sorted(p.name for p in n.iterdir()) == ["log.jsonl"] and (n / "log.jsonl").read_text() == "mine\n"


def test_overwrite_replaces_run_files_and_keeps_the_rest(tmp_path, capsys):
    n = tmp_path / "n"
    n.mkdir()
    (n / "log.jsonl").write_text("mine\n")
    (n / "notes.txt").write_text("keep me\n")
    assert _train(n, "--overwrite") == 0
    assert (n / "notes.txt").read_text() == "keep me\n"
    assert [json.loads(x)["epoch"] for x in (n / "log.jsonl").read_text().splitlines()][:2] == [1, 2]
    assert json.loads((n / "status.json").read_text())["status"] == "finished"
    assert _train(n) == 2  # a finished run is never replaced without asking
    _one_error(capsys.readouterr().err, "already holds a finished run")


def test_empty_out_folder_is_used(tmp_path):
    (tmp_path / "e").mkdir()
    assert _train(tmp_path / "e") == 0
    assert (tmp_path / "e" / "metrics.json").is_file()


@pytest.mark.parametrize("where", ["file", "below_file", "proc"])
def test_out_that_cannot_be_a_folder_is_one_line(where, tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    out = {"file": f, "below_file": f / "run", "proc": Path("/proc/jnskr-run")}[where]
    if where == "proc" and not Path("/proc").is_dir():
        pytest.skip("no /proc")
    assert _train(out) == 2
    _one_error(capsys.readouterr().err, str(out))
    assert f.read_text() == "x" and not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("fin") / "run"
    assert run(["-q", "train", "--data", str(GOOD), "--out", str(out), *FAST]) == 0
    return out


@pytest.mark.parametrize("where", ["folder", "below_file", "proc"])
def test_recommend_output_that_cannot_be_written_is_one_line(where, finished, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "d.csv").mkdir()
    output = {"folder": tmp_path / "d.csv", "below_file": tmp_path / "afile" / "r.csv",
              "proc": Path("/proc/jnskr-recs.csv")}[where]
    assert run(["recommend", str(finished), "--all", "--output", str(output)]) == 2
    _one_error(capsys.readouterr().err, str(output))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "d.csv"] and not any((tmp_path / "d.csv").iterdir())


def test_run_folder_contract(finished):
    """README's files plus status.json and checkpoint/ with a weights-only trainer.pt."""
    names = {p.name for p in finished.iterdir()}
    assert {"model.safetensors", "structure.safetensors", "config.yaml", "id_maps.json", "metrics.json", "log.jsonl",
            "environment.json", "status.json", "checkpoint"} <= names
    status = json.loads((finished / "status.json").read_text())
    assert status["status"] == "finished" and "resumable_from_epoch" in status
    assert {"model.safetensors", "trainer.pt"} <= {p.name for p in (finished / "checkpoint").iterdir()}
    state = torch.load(finished / "checkpoint" / "trainer.pt", weights_only=True)
    assert isinstance(state["state"]["epoch"], int)
    ids = json.loads((finished / "id_maps.json").read_text())
    assert {"n_users", "n_items", "user_ids", "item_ids"} <= ids.keys()
    for line in (finished / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        assert isinstance(rec["epoch"], int)
        assert "valid" not in rec or "recall@20" in rec["valid"]


def test_run_folder_appears_whole_when_training_starts(tmp_path, monkeypatch):
    """Killed while the first files are written: no run folder at all (not one without a
    status); the temporary folder is cleared by the next run."""
    import jnskr.pipeline as pl

    class Killed(BaseException):
        pass

    orig = pl.write_run_files
    seen = {}

    def write_run_files(folder, result):
        orig(folder, result)
        seen["status_then"] = folder.file("status.json").exists()
        raise Killed

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(pl, "write_run_files", write_run_files)
        with pytest.raises(Killed):
            _train(out)
    assert not out.exists() and seen == {"status_then": False}
    assert _train(out) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    st = json.loads((out / "status.json").read_text())
    assert st["status"] == "finished"


def test_status_and_checkpoint_exist_from_the_start_of_training(tmp_path, monkeypatch):
    import jnskr.training.trainer as tr

    seen = {}
    orig = tr.Trainer.train_epoch

    def train_epoch(self, epoch):
        if self.validate is not None and epoch == 0:
            seen["status"] = json.loads((tmp_path / "run" / "status.json").read_text())
            seen["ckpt"] = torch.load(tmp_path / "run" / "checkpoint" / "trainer.pt", weights_only=True)["state"]
        return orig(self, epoch)

    monkeypatch.setattr(tr.Trainer, "train_epoch", train_epoch)
    assert _train(tmp_path / "run") == 0
    assert seen["status"] == {"status": "running", "resumable_from_epoch": 0} and seen["ckpt"]["epoch"] == 0


def test_atomic_write_leaves_the_old_file_or_the_new_and_clears_stale_temps(tmp_path):
    target = tmp_path / "f.json"
    atomic_write_text(target, "old")
    (tmp_path / ".f.json.abc.tmp").write_text("left by a killed writer")

    def boom(tmp):
        Path(tmp).write_text("half")
        raise OSError(28, "No space left on device")

    from jnskr.runs import atomic_write

    with pytest.raises(JnskrError, match=r"f\.json: cannot write \(No space left on device\)"):
        atomic_write(target, boom)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]
    with pytest.raises(JnskrError, match="is a folder"):
        atomic_write_text(tmp_path, "x")


def test_log_lines_are_appended_atomically(tmp_path):
    folder = RunFolder(tmp_path)
    folder.append_log({"epoch": 1})
    folder.append_log({"epoch": 2})
    folder.truncate_log(1)
    assert folder.log_path.read_text() == '{"epoch": 1}\n'
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_stderr_is_one_record_a_line_starting_with_its_level(tmp_path, capsys):
    """No timestamps, paths or wrapped continuation lines, however long the message."""
    long = tmp_path / ("x" * 150)
    assert run(["train", "--data", str(GOOD), "--out", str(long), *FAST]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and all(ln.startswith(("INFO ", "WARNING ")) for ln in lines), err
    assert any(ln.startswith("INFO training jnskr") and str(long) in ln for ln in lines), err


def test_python_warnings_become_warning_records(capsys):
    import logging
    import warnings

    from jnskr.cli.common import setup_logging

    setup_logging()
    warnings.warn("something odd", UserWarning)
    assert capsys.readouterr().err.splitlines() == ["WARNING UserWarning: something odd"]
    logging.getLogger("jnskr").handlers.clear()


def test_usage_errors_are_one_line(capsys):
    assert run(["train", "--no-such-flag"]) == 2
    _one_error(capsys.readouterr().err, "No such option: --no-such-flag", "jnskr train --help")


def test_os_errors_reach_the_boundary_as_one_line(monkeypatch, capsys):
    """An OSError from anywhere (here: reading the dataset) is one line naming the file."""
    import jnskr.cli.train as ct

    def load(cfg):
        raise PermissionError(13, "Permission denied", "/data/secret.txt")

    monkeypatch.setattr(ct, "_load_data", load)
    assert run(["train", "--data", str(GOOD), *FAST]) == 2
    line = _one_error(capsys.readouterr().err)
    assert line == "error: /data/secret.txt: Permission denied"
    assert os.environ.get("RANK") in (None, "0")
