"""Concurrent writers (issue 20, class 1): a run folder is claimed under a lock at the moment it
is checked, so two `train` runs into one `--out` (or two `--resume` of one run) cannot both go
on; default run names taken in the same second move on to `-2`; a lock left by a killed process
is stale and taken over; `append_log` appends.  Also the launch environment (a left-over
`RANK`), interrupted runs named as such, and a corrupt dataset cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jnskr.cli.main import run
from jnskr.locks import RunLock, lock_path
from jnskr.runs import RunFolder
from conftest import DATA
from test_reliability_files import FAST, _one_error

GOOD = DATA / "kgat_tiny"

HOLD = """
import sys, time
from jnskr.locks import RunLock
RunLock(sys.argv[1], sys.argv[2]).acquire()
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder():
    """Start another process that holds the lock of a folder (as a running `train` does)."""
    procs = []

    def hold(folder: Path, doing: str = "writing") -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), doing], stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout.readline().strip() == "held"
        return p

    yield hold
    for p in procs:
        p.kill()
        p.wait()


def _train(out, *extra) -> int:
    return run(["train", "--data", str(GOOD), "--out", str(out), *FAST, *extra])


def test_second_train_into_one_out_is_refused_while_the_first_runs(tmp_path, holder, capsys):
    out = tmp_path / "run"
    first = holder(out)
    assert _train(out) == 2
    _one_error(capsys.readouterr().err, str(out), f"pid {first.pid}", "writing")
    assert not out.exists()  # nothing written by the refused run
    assert _train(out, "--overwrite") == 2  # --overwrite does not break the lock either
    capsys.readouterr()


def test_lock_is_held_from_the_check_to_the_end(tmp_path, monkeypatch, capsys):
    """The check runs under the lock: while one train loads its data, another process that
    claims the same folder is refused (before the fix both passed the check and the second
    deleted the first's finished run files)."""
    import jnskr.cli.train as train_cli

    out = tmp_path / "run"
    real = train_cli._load_data
    seen = {}

    def load(cfg):
        with pytest.raises(Exception, match="another call of this process is writing"):
            RunLock(out).acquire()  # (another process gets "another jnskr process (pid N)")
        seen["checked"] = True
        return real(cfg)

    monkeypatch.setattr(train_cli, "_load_data", load)
    assert _train(out) == 0 and seen["checked"]
    assert json.loads((out / "status.json").read_text())["status"] == "finished"
    assert not lock_path(out).exists()  # released, and its file removed
    RunLock(out).acquire().release()


def test_stale_lock_of_a_killed_process_is_taken_over(tmp_path, holder, capsys):
    out = tmp_path / "run"
    p = holder(out)
    p.kill()
    p.wait()
    assert lock_path(out).exists()  # left behind, but the kernel dropped its flock
    assert _train(out) == 0
    assert (out / "metrics.json").is_file() and not lock_path(out).exists()


def test_stale_lock_by_pid_without_flock(tmp_path, monkeypatch):
    import jnskr.locks as locks

    class NoFlock:
        LOCK_EX = LOCK_NB = 0

        @staticmethod
        def flock(fd, op):
            raise OSError(38, "Function not implemented")

    monkeypatch.setattr(locks, "fcntl", NoFlock)
    out = tmp_path / "run"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    import socket

    lock_path(out).write_text(json.dumps({"pid": int(dead), "host": socket.gethostname()}))
    RunLock(out).acquire().release()  # the pid no longer runs: stale
    lock_path(out).write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))
    with pytest.raises(Exception, match=f"pid {os.getppid()}"):
        RunLock(out).acquire()


def test_default_names_in_the_same_second_do_not_collide(tmp_path, monkeypatch, holder, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101-000000")
    args = ["train", "--data", str(GOOD), *FAST]
    assert run(args) == 0
    assert run(args) == 0  # the same second: the name is taken, the run goes to -2
    names = sorted(p.name for p in (tmp_path / "runs").iterdir() if not p.name.startswith("."))
    assert names == ["kgat_tiny-jnskr-20260101-000000", "kgat_tiny-jnskr-20260101-000000-2"]
    holder(tmp_path / "runs" / "kgat_tiny-jnskr-20260101-000000-3")  # being claimed right now elsewhere
    assert run(args) == 0
    assert (tmp_path / "runs" / "kgat_tiny-jnskr-20260101-000000-4" / "metrics.json").is_file()
    for n in names:
        assert (tmp_path / "runs" / n / "metrics.json").is_file()


def test_two_resumes_of_one_run_the_second_is_refused(tmp_path, holder, capsys):
    out = tmp_path / "run"
    assert _train(out) == 0
    (out / "status.json").write_text(json.dumps({"status": "interrupted", "resumable_from_epoch": 1}))
    (out / "metrics.json").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    first = holder(out, "resuming")
    assert run(["train", "--resume", str(out)]) == 2
    _one_error(capsys.readouterr().err, f"pid {first.pid}", "resuming")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == before


def test_append_log_appends_without_rewriting(tmp_path):
    folder = RunFolder(tmp_path)
    folder.append_log({"epoch": 1})
    ino = folder.log_path.stat().st_ino
    with open(folder.log_path, "a") as f:  # a line a killed writer left without its newline
        f.write('{"epoch": 2')
    folder.append_log({"epoch": 3})
    assert folder.log_path.stat().st_ino == ino  # the same file, appended to (not replaced)
    assert folder.log_path.read_text() == '{"epoch": 1}\n{"epoch": 2\n{"epoch": 3}\n'


@pytest.mark.parametrize("env", [{"RANK": "1"}, {"RANK": "3", "WORLD_SIZE": "1"}, {"LOCAL_RANK": "1", "RANK": "1"}])
def test_left_over_rank_does_not_silence_errors(env, tmp_path, monkeypatch, capsys):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert run(["recommend", str(tmp_path / "nope"), "--user", "1"]) == 2
    _one_error(capsys.readouterr().err, "nope")


@pytest.mark.parametrize("env,expected", [({"RANK": "1", "WORLD_SIZE": "2"}, "MASTER_ADDR"),
                                          ({"RANK": "x", "WORLD_SIZE": "2"}, "not integers"),
                                          ({"RANK": "5", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                                            "MASTER_PORT": "1"}, "not a rank")])
def test_broken_launch_environment_is_one_line(env, expected, tmp_path, monkeypatch, capsys):
    for k in ("MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert _train(tmp_path / "run") == 2
    _one_error(capsys.readouterr().err, expected)
    assert not (tmp_path / "run").exists()


def test_interrupted_run_says_resume_it(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "status.json").write_text(json.dumps({"status": "interrupted", "resumable_from_epoch": 1}))
    (out / "config.yaml").write_text("model: jnskr\n")
    for cmd in (["recommend", str(out), "--user", "1"], ["evaluate", str(out)], ["export-embeddings", str(out),
                                                                                   "-o", str(tmp_path / "e")]):
        assert run(cmd) == 2
        line = _one_error(capsys.readouterr().err, "unfinished", "interrupted", "jnskr train --resume")
        assert "not a run folder" not in line and "is this a jnskr run folder" not in line
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("meta", ["[1, 2]", '{"version": %d}', '{"version": %d, "n_users": 99999, "n_items": 2, '
                                  '"kg": null, "name": "x", "source_hash": "", "stats": {}, "warnings": []}'])
def test_corrupt_cache_meta_is_a_cache_miss(meta, tmp_path):
    from jnskr.data.cache import READABLE, load_saved, save_dataset
    from conftest import synthetic_dataset

    path = save_dataset(synthetic_dataset(), tmp_path / "c.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["meta"] = np.array(meta % sorted(READABLE)[-1] if "%d" in meta else meta)
    np.savez(path, **arrays)
    assert load_saved(path) is None  # read the source again; before: a traceback


def test_library_fit_into_a_folder_another_process_writes_is_refused(tmp_path, holder):
    """The lock was the CLI's alone: `Recommender.fit(run_dir=...)` from a notebook wrote into a
    folder a running `jnskr train` held.  Now `pipeline.run` holds the folder's lock too (re-entrant
    for the CLI, which claimed it already), and releases it when done."""
    from conftest import synthetic_dataset, tiny_config
    from jnskr import Recommender
    from jnskr.errors import JnskrError
    from jnskr.locks import RunLock

    out = tmp_path / "run"
    first = holder(out)
    with pytest.raises(JnskrError, match=f"pid {first.pid}.*is writing this run folder"):
        Recommender(tiny_config("enmf", 1)).fit(synthetic_dataset(), run_dir=out)
    assert not out.exists()
    first.kill()
    first.wait()
    Recommender(tiny_config("enmf", 1)).fit(synthetic_dataset(), run_dir=out)  # free again: it writes
    assert (out / "metrics.json").is_file() and not lock_path(out).exists()  # and lets go
    claimed = tmp_path / "claimed"
    lock = RunLock(claimed).acquire()  # this thread holds it (the CLI's claim): its fit goes on
    try:
        Recommender(tiny_config("enmf", 1)).fit(synthetic_dataset(), run_dir=claimed)
    finally:
        lock.release()
    assert (claimed / "metrics.json").is_file()
