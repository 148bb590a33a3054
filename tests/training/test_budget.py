"""`jnskr train --budget` / `Recommender.fit(budget=...)`: a search on validation inside a wall-clock
budget, then the best setting trained; every trial kept; Ctrl-C keeps the best so far."""

import json

import pytest

from conftest import synthetic_dataset
from jnskr import Recommender, build_config
from jnskr.budget import parse_budget
from jnskr.errors import ConfigError

pytest.importorskip("optuna")
FAST = ["train.epochs=3", "jnskr.embed_dim=8"]


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("15m", 900), ("1.5h", 5400), ("20", 20), (7.5, 7.5)])
def test_budgets_read_as_durations(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5m", "15 minutes", "", "nan", "1e400"])
def test_bad_budgets_are_one_line_errors(text):
    with pytest.raises(ConfigError, match="--budget"):
        parse_budget(text)


def _spy_test_reads(monkeypatch):
    import jnskr.pipeline as pipeline

    seen, real = [], pipeline.evaluate

    def spy(model, cfg, test, exclude, strategy=None):
        seen.append(test)
        return real(model, cfg, test, exclude, strategy)

    monkeypatch.setattr(pipeline, "evaluate", spy)
    return seen


def test_fit_with_a_budget_tunes_on_validation_then_trains_the_best(tmp_path, monkeypatch):
    ds = synthetic_dataset()
    seen = _spy_test_reads(monkeypatch)
    space = tmp_path / "small.yaml"  # short trials, so that a busy machine still runs several in the budget
    space.write_text("space:\n  jnskr.mu: [0.01, 0.1]\n  jnskr.keep_prob: [[0.8, 0.8], [1.0, 1.0]]\n"
                     "set: [train.epochs=3, train.eval_every=1]\n")
    rec = Recommender(build_config("default", overrides=FAST)).fit(ds, run_dir=tmp_path / "run", budget="10s",
                                                                progress=False, space=str(space))
    t = rec.tuning
    done = [x for x in t.trials if x["state"] == "COMPLETE"]
    assert len(done) >= 2 and t.best["value"] == max(x["value"] for x in done)
    assert t.trials[0]["number"] == 0 and t.seconds <= 10 * 0.6 + 5  # the search stops near its share
    # the chosen trial's values are the trained config's
    for key, value in t.best["params"].items():
        section, name = key.split(".")
        got = getattr(getattr(rec.config, section), name)
        assert (list(got) if isinstance(got, tuple) else got) == (pytest.approx(value) if isinstance(value, float)
                                                                  else value)
    assert any("--budget" in layer for layer in rec.config.layers())
    saved = json.loads((tmp_path / "run" / "tuning.json").read_text())
    assert saved["best"]["number"] == t.best["number"] and len(saved["trials"]) == len(t.trials)
    # tuning read validation only: the one test evaluation is the final fit's
    assert sum(x.nnz == ds.test.nnz for x in seen) == 1
    assert rec.metrics["test"]["recall@20"] >= 0


def test_ctrl_c_while_tuning_keeps_the_best_so_far(monkeypatch):
    from jnskr import tune as T

    calls, real = [], T.validation_run

    def flaky(cfg, ds, progress=None):
        calls.append(cfg)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(cfg, ds, progress)

    monkeypatch.setattr(T, "validation_run", flaky)
    rec = Recommender(build_config("default", overrides=FAST)).fit(synthetic_dataset(), budget="60s", progress=False)
    assert rec.tuning.interrupted and rec.tuning.best is not None
    assert rec.tuning.best["number"] in (0, 1) and len(calls) == 3
    assert rec.metrics["test"]  # the final fit ran


def test_the_command_line(tmp_path, capsys):
    from test_cli import write_kgat

    from jnskr.cli.main import run

    data = write_kgat(synthetic_dataset(), tmp_path / "synth")
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), *sum((["--set", s] for s in FAST), [])]
    assert run([*args, "--budget", "3s"]) == 0
    assert (out / "tuning.json").is_file() and (out / "metrics.json").is_file()
    capsys.readouterr()
    assert run([*args[:3], "--out", str(tmp_path / "r2"), "--budget", "soon"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "--budget" in err and not (tmp_path / "r2").exists()
    assert run([*args[:3], "--out", str(tmp_path / "r3"), "--space", "ials"]) == 2
    assert "--space" in capsys.readouterr().err
