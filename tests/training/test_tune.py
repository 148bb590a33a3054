"""`jnskr tune`: the search space format, validation-only trials, a resumable SQLite study, the
results table and the best configuration written as a commented preset."""

import pytest
import yaml

from conftest import synthetic_dataset
from jnskr.errors import ConfigError
from jnskr.tune import load_space, parse_space

FAST = ["device=cpu", "train.epochs=3", "train.batch_size=16", "eval.ks=[5,10]", "jnskr.embed_dim=8",
        "jnskr.c0=20", "jnskr.c1=20"]

SPACE = """\
space:
  jnskr.keep_prob: [[0.5, 0.5], [0.8, 0.7]]
  jnskr.lambda_emb: {low: 1.0e-4, high: 1.0e-1, log: true}
  jnskr.embed_dim: {low: 4, high: 8, step: 4}
trials: 3
"""


def test_space_parsing(tmp_path):
    sp = parse_space(yaml.safe_load(SPACE))
    kinds = {p.key: (p.choices is not None, p.is_int, p.log) for p in sp.params}
    assert kinds == {"jnskr.keep_prob": (True, False, False), "jnskr.lambda_emb": (False, False, True),
                     "jnskr.embed_dim": (False, True, False)}
    assert sp.trials == 3
    for bad, msg in [({"space": {}}, "space"), ({"space": {"a.b": []}}, "empty list"),
                     ({"space": {"a.b": {"low": 2, "high": 1}}}, "low < high"),
                     ({"space": {"a.b": {"low": 0, "high": 1, "log": True}}}, "log range"),
                     ({"space": {"a.b": 3}}, "list of choices"), ({"spaces": {}}, "unknown key")]:
        with pytest.raises(ConfigError, match=msg):
            parse_space(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_space(tmp_path / "nope.yaml")


def _write_kgat(tmp_path):
    from test_cli import write_kgat

    return write_kgat(synthetic_dataset(), tmp_path / "synth")


def test_bad_values_fail_before_any_trial(tmp_path, capsys):
    pytest.importorskip("optuna")
    from jnskr.cli.main import run

    space = tmp_path / "space.yaml"
    space.write_text("space:\n  jnskr.keep_prob: [[0.5, 0.5], [1.5, 0.7]]\n")
    data = _write_kgat(tmp_path)
    assert run(["tune", str(space), "--data", str(data), "--study", str(tmp_path / "s.db")]) == 2
    assert "jnskr.keep_prob" in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists()
    space.write_text("space:\n  jnskr.c0: [10, 20]\nset: [train.protocol=paper]\n")
    assert run(["tune", str(space), "--data", str(data), "--study", str(tmp_path / "s.db")]) == 2
    assert "validation only" in capsys.readouterr().err


def test_tune_runs_resumes_and_writes_the_best_preset(tmp_path, capsys, monkeypatch):
    pytest.importorskip("optuna")
    from jnskr import tune as T
    from jnskr.cli.main import run
    from jnskr.config import build_config

    seen_test = []
    import jnskr.pipeline as pipeline

    real_evaluate = pipeline.evaluate

    def spy(model, cfg, test, exclude, strategy=None):
        seen_test.append(test)
        return real_evaluate(model, cfg, test, exclude, strategy)

    monkeypatch.setattr(pipeline, "evaluate", spy)
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    data = _write_kgat(tmp_path)
    study = tmp_path / "study.db"
    args = ["tune", str(space), "--data", str(data), "--study", str(study), *sum((["--set", s] for s in FAST), [])]
    assert run([*args, "--trials", "2"]) == 0
    out = capsys.readouterr().out
    assert "trial 0 complete" in out and "trial 1 complete" in out and "valid recall@20" in out
    best = tmp_path / "study-best.yaml"
    assert best.is_file()
    # selection never evaluated the test split: every evaluation was on the validation holdout
    ds = synthetic_dataset()
    assert seen_test and all(t.nnz != ds.test.nnz for t in seen_test)
    # resume: the same study continues to 3 finished trials
    assert run([*args, "--trials", "3"]) == 0
    out = capsys.readouterr().out
    assert "2 finished trial(s)" in out and "trial 2 complete" in out and "trial 0 complete" not in out
    import optuna

    st = optuna.load_study(study_name="jnskr", storage=f"sqlite:///{study}")
    assert len(st.trials) == 3
    # the best preset: comments on every key, the tuned keys marked, loadable as a config
    text = best.read_text()
    assert "Selected on VALIDATION recall@20" in text and "test split was never evaluated" in text
    tuned = [ln for ln in text.splitlines() if "(tuned:" in ln]
    assert {ln.split(":")[0].strip() for ln in tuned} == {"keep_prob", "lambda_emb", "embed_dim"}
    bare = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#") and "#" not in ln]
    assert not bare
    cfg = build_config(file=best)
    assert cfg.data.path == str(data.resolve())
    assert abs(cfg.jnskr.lambda_emb - st.best_trial.params["jnskr.lambda_emb"]) < 1e-12
    # a changed space does not silently mix into the old study
    space.write_text(SPACE.replace("[0.8, 0.7]", "[0.9, 0.9]"))
    assert run([*args, "--trials", "4"]) == 2
    assert "another search space" in capsys.readouterr().err
    assert T.rows(st, T.load_space(tmp_path / "space.yaml"))  # rows of the old study still read


def test_optuna_missing_is_one_line(tmp_path, capsys, monkeypatch):
    import builtins

    from jnskr.cli.main import run

    real_import = builtins.__import__

    def no_optuna(name, *a, **k):
        if name == "optuna" or name.startswith("optuna."):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_optuna)
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    assert run(["tune", str(space)]) == 2
    assert "pip install optuna" in capsys.readouterr().err
