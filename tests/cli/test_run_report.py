"""`jnskr report RUN` (learning-curve PNG + summary) and `--tracker tensorboard|mlflow`."""

import json

import pytest

from conftest import synthetic_dataset
from jnskr.cli.main import run
from test_cli import FAST, write_kgat


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    data = write_kgat(synthetic_dataset(), root / "synth")
    out = root / "run"
    assert run(["train", "--data", str(data), "--out", str(out), *FAST, "--set", "train.epochs=6"]) == 0
    return out


def test_report_writes_png_and_summary(trained, capsys):
    pytest.importorskip("matplotlib")
    assert run(["report", str(trained)]) == 0
    out = capsys.readouterr().out
    png = trained / "report.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    metrics = json.loads((trained / "metrics.json").read_text())
    text = (trained / "report.txt").read_text()
    for needle in ("model      jnskr", "solver", "synth", f"best epoch {metrics['best_epoch']}",
                   f"recall {metrics['test']['recall@10']:.4f}", "s training"):
        assert needle in text, needle
    assert text.strip() in out.replace("\n", "\n")


def test_report_curves_read_the_log(trained):
    from jnskr.report import read_log

    selection, refit = read_log(trained)
    assert [r["epoch"] for r in selection] == list(range(1, len(selection) + 1))
    assert any(r.get("valid") for r in selection)
    assert selection[-1]["elapsed"] >= selection[0]["elapsed"] > 0
    metrics = json.loads((trained / "metrics.json").read_text())
    assert len(refit) == (metrics["refit"] or {}).get("epochs", 0)


def test_report_errors(tmp_path, capsys):
    assert run(["report", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert run(["report", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_tracker_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = write_kgat(synthetic_dataset(), tmp_path / "synth")
    out = tmp_path / "run"
    assert run(["train", "--data", str(data), "--out", str(out), *FAST, "--tracker", "tensorboard"]) == 0
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"loss", "seconds", "valid/recall@10", "test/recall@10"} <= tags
    metrics = json.loads((out / "metrics.json").read_text())
    assert acc.Scalars("test/recall@10")[0].value == pytest.approx(metrics["test"]["recall@10"], rel=1e-6)


def test_tracker_mlflow(tmp_path):
    pytest.importorskip("mlflow")
    import mlflow

    data = write_kgat(synthetic_dataset(), tmp_path / "synth")
    out = tmp_path / "runs" / "one"
    assert run(["train", "--data", str(data), "--out", str(out), *FAST, "--tracker", "mlflow"]) == 0
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["jnskr"])
    assert len(runs) == 1 and runs["tags.mlflow.runName"][0] == "one" and runs["status"][0] == "FINISHED"
    metrics = json.loads((out / "metrics.json").read_text())
    assert runs["metrics.test/recall_at_10"][0] == pytest.approx(metrics["test"]["recall@10"])
    assert runs["params.jnskr.embed_dim"][0] == "8"
    client = mlflow.tracking.MlflowClient()
    hist = client.get_metric_history(runs["run_id"][0], "valid/recall_at_10")
    assert len(hist) >= 1


def test_tracker_missing_package_is_one_line(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def missing(name, *a, **k):
        if name.startswith("torch.utils.tensorboard") or name == "mlflow":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", missing)
    data = write_kgat(synthetic_dataset(), tmp_path / "synth")
    for tracker, hint in (("tensorboard", "pip install tensorboard"), ("mlflow", "pip install mlflow")):
        assert run(["train", "--data", str(data), "--out", str(tmp_path / tracker), *FAST, "--tracker", tracker]) == 2
        assert hint in capsys.readouterr().err
    assert run(["train", "--data", str(data), "--out", str(tmp_path / "x"), *FAST, "--tracker", "wandb"]) == 2
    assert "expected one of tensorboard, mlflow" in capsys.readouterr().err


def test_summary_gives_the_refit_seconds(tmp_path):
    """The refit line read a key metrics.json never had and always said 0.0 s."""
    import json

    from jnskr.report import summary

    run = tmp_path / "run"
    run.mkdir()
    metrics = {"protocol": "standard", "best_epoch": 4, "epochs_run": 6, "valid": {"recall@20": 0.3},
               "select_metric": "recall@20", "test": {"recall@20": 0.31}, "train_seconds": 9.5,
               "refit": {"epochs": 4, "trained_on": "all of train", "beside_selection": True},
               "refit_seconds": 1.25, "selection_seconds": 8.25}
    (run / "metrics.json").write_text(json.dumps(metrics))
    line = [ln for ln in summary(run).splitlines() if ln.startswith("refit")][0]
    assert line == "refit      4 epochs on all of train, beside selection (1.2 s after selection)"
