"""`jnskr tune` under pressure (issue 20, classes 1, 2, 6, 7, 8): two processes on one study
cooperate; `--out` never replaces an input or a file tune did not write; every trial runs the
memory estimate; bad step/log ranges, corrupt or locked databases and odd study paths are one
line; a diverged trial is one warning line, not Optuna's traceback; Ctrl-C inside a trial does
not count it as finished and says what the study keeps."""

from __future__ import annotations

import os
import socket
import sqlite3

import pytest

pytest.importorskip("optuna")

from jnskr import tune as T  # noqa: E402
from jnskr.cli.main import run  # noqa: E402
from jnskr.errors import ConfigError, JnskrError  # noqa: E402
from conftest import synthetic_dataset  # noqa: E402
from test_reliability_files import _one_error  # noqa: E402

FAST = ["device=cpu", "train.epochs=2", "train.batch_size=16", "eval.ks=[5,10]", "jnskr.embed_dim=4",
        "jnskr.c0=20", "jnskr.c1=20"]
SPACE = "space:\n  jnskr.lambda_emb: {low: 1.0e-3, high: 1.0e-1, log: true}\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from test_cli import write_kgat

    return write_kgat(synthetic_dataset(), tmp_path_factory.mktemp("tune") / "synth")


def _args(tmp_path, data, *extra, space=SPACE):
    sp = tmp_path / "space.yaml"
    sp.write_text(space)
    return ["tune", str(sp), "--data", str(data), "--study", str(tmp_path / "s.db"),
            *sum((["--set", s] for s in FAST), []), *extra]


def _study(path):
    import optuna

    from jnskr.studies import storage_url

    return optuna.load_study(study_name="jnskr", storage=storage_url(path))


# ------------------------------------------------------------------ class 1: two processes
def test_a_trial_another_live_process_runs_is_left_alone(tmp_path, data, capsys):
    assert run([*_args(tmp_path, data), "--trials", "1"]) == 0
    st = _study(tmp_path / "s.db")
    other = st.ask()  # another jnskr tune, alive, running a trial on the same study
    other.set_user_attr(T.OWNER, {"host": socket.gethostname(), "pid": os.getppid()})
    assert run([*_args(tmp_path, data), "--trials", "3"]) == 0
    states = {t.number: t.state.name for t in _study(tmp_path / "s.db").trials}
    assert states[other.number] == "RUNNING"  # before: marked FAIL, and the other process crashed on tell
    assert len(T.finished(_study(tmp_path / "s.db"))) == 2  # its trial will be the third


def test_an_abandoned_trial_is_not_counted_and_runs_again(tmp_path, data, capsys):
    assert run([*_args(tmp_path, data), "--trials", "1"]) == 0
    st = _study(tmp_path / "s.db")
    dead = st.ask()
    dead.set_user_attr(T.OWNER, {"host": socket.gethostname(), "pid": 2**22 + 12345})
    assert run([*_args(tmp_path, data), "--trials", "2"]) == 0
    st = _study(tmp_path / "s.db")
    t = st.trials[dead.number]
    assert t.state.name == "FAIL" and t.user_attrs.get(T.INTERRUPTED)
    assert len(T.finished(st)) == 2 and len(st.trials) == 3


# ------------------------------------------------------------------ class 2: --out
def test_out_never_replaces_the_config_or_a_foreign_file(tmp_path, data, capsys):
    cfg = tmp_path / "base.yaml"
    cfg.write_text("model: jnskr\n")
    assert run([*_args(tmp_path, data), "--config", str(cfg), "--out", str(cfg)]) == 2
    _one_error(capsys.readouterr().err, "--config", str(cfg))
    assert cfg.read_text() == "model: jnskr\n" and not (tmp_path / "s.db").exists()
    mine = tmp_path / "notes.yaml"
    mine.write_text("my notes\n")
    assert run([*_args(tmp_path, data), "--out", str(mine)]) == 2
    _one_error(capsys.readouterr().err, "not written by jnskr", "--overwrite")
    assert mine.read_text() == "my notes\n" and not (tmp_path / "s.db").exists()  # refused before the search
    best = tmp_path / "best.yaml"
    assert run([*_args(tmp_path, data), "--trials", "1", "--out", str(best)]) == 0
    assert run([*_args(tmp_path, data), "--trials", "2", "--out", str(best)]) == 0  # its own file: replaced
    assert "2 trials" in best.read_text()
    # --overwrite replaces a foreign file (was: no way but to remove it), never an input
    assert run([*_args(tmp_path, data), "--trials", "2", "--out", str(mine), "--overwrite"]) == 0
    assert mine.read_text().startswith(T.BEST_MARK)
    assert run([*_args(tmp_path, data), "--config", str(cfg), "--out", str(cfg), "--overwrite"]) == 2
    _one_error(capsys.readouterr().err, "--config", str(cfg))
    assert cfg.read_text() == "model: jnskr\n"


# ------------------------------------------------------------------ class 6: memory per trial
def test_every_trial_runs_the_memory_estimate(tmp_path, data, capfd, monkeypatch):
    import jnskr.pipeline as pipeline

    def no_build(*a, **k):
        raise AssertionError("the model was built before the size estimate")

    monkeypatch.setattr(pipeline, "build", no_build)
    space = "space:\n  jnskr.embed_dim: [200000]\n"
    assert run([*_args(tmp_path, data, space=space), "--trials", "1", "--set", "data.max_memory_gb=0.05"]) == 2
    err = capfd.readouterr().err
    assert "trial 0 failed: jnskr.embed_dim=200000: training would need about" in err
    _one_error(err, "no trial finished")


# ------------------------------------------------------------------ class 7: one-line errors
@pytest.mark.parametrize("spec,words", [
    ({"low": 1, "high": 64, "log": True, "step": 2}, "takes no step"),
    ({"low": 0.1, "high": 1.0, "log": True, "step": 0.1}, "takes no step"),
    ({"low": 1, "high": 8, "step": 0}, "positive number"),
    ({"low": 1, "high": 8, "step": -2}, "positive number"),
    ({"low": 1, "high": 8, "step": "two"}, "positive number"),
    ({"low": 1, "high": 8, "step": 100}, "wider than the range"),
    ({"low": float("nan"), "high": 8}, "finite numbers"),
    ({"low": 1, "high": float("inf")}, "finite numbers"),
    ({"low": 1, "high": 8, "log": "yes"}, "true or false"),
])
def test_bad_step_log_combinations(spec, words):
    with pytest.raises(ConfigError, match=words):
        T.parse_space({"space": {"jnskr.embed_dim": spec}})


def test_trials_true_is_not_one():
    with pytest.raises(ConfigError, match="positive integer"):
        T.parse_space({"space": {"jnskr.c0": [1]}, "trials": True})


def test_bad_range_on_the_command_line_is_one_line(tmp_path, data, capsys):
    space = "space:\n  jnskr.lambda_emb: {low: 1.0e-3, high: 1.0e-1, log: true, step: 1.0e-3}\n"
    assert run(_args(tmp_path, data, space=space)) == 2
    _one_error(capsys.readouterr().err, "takes no step")
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("name", ["a?b.db", "c%41d.db", "e#f.db"])
def test_study_path_names_exactly_that_file(name, tmp_path, data, capsys):
    args = _args(tmp_path, data, "--trials", "1")
    args[args.index("--study") + 1] = str(tmp_path / name)
    assert run(args) == 0
    files = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db" or p.name in ("a", "c", "cAd.db", "e"))
    assert files == [name]


def test_corrupt_study_database_is_one_line(tmp_path, data, capfd):
    (tmp_path / "s.db").write_bytes(b"this is not sqlite" * 300)
    assert run(_args(tmp_path, data)) == 2
    _one_error(capfd.readouterr().err, "s.db", "not a study database")
    assert (tmp_path / "s.db").read_bytes() == b"this is not sqlite" * 300


def test_locked_study_database_is_one_line(tmp_path, data, capfd, monkeypatch):
    import jnskr.studies as studies

    assert run([*_args(tmp_path, data), "--trials", "1"]) == 0
    capfd.readouterr()
    monkeypatch.setattr(studies, "DB_TIMEOUT", 0.2)
    holder = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert run([*_args(tmp_path, data), "--trials", "2"]) == 2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    _one_error(capfd.readouterr().err, "s.db", "locked by another process")


@pytest.mark.parametrize("message,words", [("attempt to write a readonly database", "read-only"),
                                           ("unable to open database file", "cannot open")])
def test_read_only_or_unopenable_database_is_one_line(message, words):
    from jnskr.studies import db_errors

    with pytest.raises(JnskrError, match=words):
        with db_errors("s.db"):
            raise sqlite3.OperationalError(message)


def test_diverged_trial_is_one_warning_line_not_a_traceback(tmp_path, data, capfd, monkeypatch):
    from jnskr.training.trainer import TrainingDiverged

    def diverge(*a, **k):
        raise TrainingDiverged("loss is nan at epoch 1")

    monkeypatch.setattr(T, "validation_run", diverge)
    assert run([*_args(tmp_path, data), "--trials", "2"]) == 2
    err = capfd.readouterr().err
    assert err.count("WARNING trial") == 2 and "loss is nan" in err
    _one_error(err, "no trial finished")  # no Traceback, every line a level or error line


# ------------------------------------------------------------------ class 8: Ctrl-C in a trial
def test_ctrl_c_inside_a_trial_is_not_a_finished_trial(tmp_path, data, capfd, monkeypatch):
    """The CLI's Ctrl-C (jnskr.stop: `Interrupted`) in the second trial."""
    from jnskr.stop import Interrupted

    real = T.validation_run
    calls = []

    def second_interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise Interrupted()
        return real(*a, **k)

    monkeypatch.setattr(T, "validation_run", second_interrupted)
    assert run([*_args(tmp_path, data), "--trials", "3"]) == 130
    err = capfd.readouterr().err
    warn = [ln for ln in err.splitlines() if ln.startswith("WARNING interrupted")]
    assert len(warn) == 1 and "keeps its 1 finished trial(s)" in warn[0] and "trial 1 was interrupted" in warn[0]
    assert "not counted" in warn[0] and "Traceback" not in err
    st = _study(tmp_path / "s.db")
    assert len(T.finished(st)) == 1
    monkeypatch.setattr(T, "validation_run", real)
    assert run([*_args(tmp_path, data), "--trials", "2"]) == 0  # resumes: one more trial, not zero
    assert len(T.finished(_study(tmp_path / "s.db"))) == 2


def test_keyboard_interrupt_in_library_use(tmp_path, data, monkeypatch):
    """Without the CLI's handlers Ctrl-C is a KeyboardInterrupt: the trial is marked, not
    counted, and the exception carries what the study keeps."""
    from jnskr.config import validate_config
    from jnskr.data import load_dataset

    space = T.parse_space({"space": {"jnskr.lambda_emb": {"low": 0.001, "high": 0.1, "log": True}}})
    base = T.base_dict("default", None, {"data": {"path": str(data), "dataset": None}}, FAST)
    ds = load_dataset(str(data))
    st = T.open_study(tmp_path / "s.db", T.signature(space, base, ds.fingerprint()))
    validate_config(base, "tune")

    def interrupt(*a, **k):
        raise KeyboardInterrupt()

    monkeypatch.setattr(T, "validation_run", interrupt)
    with pytest.raises(KeyboardInterrupt) as info:
        T.run_trials(st, space, base, ds, 2)
    assert "keeps its 0 finished trial(s)" in info.value.kept
    assert T.finished(st) == [] and st.trials[0].user_attrs[T.INTERRUPTED] is True
