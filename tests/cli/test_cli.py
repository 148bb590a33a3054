"""CLI round trips: train -> evaluate -> recommend on a KGAT folder; user errors exit 2."""

import json

import pytest

from conftest import synthetic_dataset
from jnskr.cli.main import run

FAST = ["--set", "train.epochs=5", "--set", "train.batch_size=16", "--set", "jnskr.embed_dim=8",
        "--set", "eval.ks=[5,10]", "--set", "jnskr.c0=20", "--set", "jnskr.c1=20", "--device", "cpu"]


def write_kgat(ds, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        csr = getattr(ds, split)
        lines = [" ".join(str(x) for x in [u, *csr.row(u).tolist()]) for u in range(ds.n_users) if len(csr.row(u))]
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    kg = ds.kg
    (folder / "kg_final.txt").write_text(
        "".join(f"{h} {r} {t}\n" for h, r, t in zip(kg.heads.tolist(), kg.relations.tolist(), kg.tails.tolist())))
    return folder


@pytest.fixture
def kgat_dir(tmp_path):
    return write_kgat(synthetic_dataset(), tmp_path / "synth")


def test_train_evaluate_recommend_round_trip(kgat_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["train", "--data", str(kgat_dir), "--out", str(out), *FAST]) == 0
    text = capsys.readouterr().out
    assert "Recall" in text and "test @10" in text and "NDCG legacy" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert run(["evaluate", str(out), "--data", str(kgat_dir)]) == 0
    text = capsys.readouterr().out
    assert f"{metrics['test']['recall@10']:.4f}" in text
    assert run(["recommend", str(out), "--user", "3", "--k", "4"]) == 0
    text = capsys.readouterr().out
    assert "top 4 for user 3" in text


@pytest.mark.parametrize("model", ["enmf", "popularity"])
def test_train_other_models(kgat_dir, tmp_path, model):
    assert run(["train", "--data", str(kgat_dir), "--model", model, "--out", str(tmp_path / model), *FAST]) == 0
    assert json.loads((tmp_path / model / "metrics.json").read_text())["model"] == model


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "jnskr.nope=1"], "unknown key 'jnskr.nope'"),
        (["--set", "jnskr.c0=abc"], "jnskr.c0"),
        (["--set", "train.select_metric=mrr@5"], "select_metric"),
        (["--model", "kgat"], "model"),
    ],
)
def test_config_errors_exit_2_with_one_line(kgat_dir, tmp_path, capsys, args, message):
    out = tmp_path / "bad"
    assert run(["train", "--data", str(kgat_dir), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert not (out / "metrics.json").exists()


def test_missing_paths_exit_2(tmp_path, capsys):
    assert run(["train", "--data", str(tmp_path / "nope")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert run(["evaluate", str(tmp_path / "nope")]) == 2
    assert run(["recommend", str(tmp_path / "nope"), "--user", "1"]) == 2
    bad = tmp_path / "c.yaml"
    bad.write_text("train:\n  epochs: [1\n")
    assert run(["train", "--config", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_unknown_user_exits_2(kgat_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["train", "--data", str(kgat_dir), "--out", str(out), *FAST]) == 0
    assert run(["recommend", str(out), "--user", "99999"]) == 2
    assert "unknown user" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "jnskr", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "train" in r.stdout


def test_unknown_option_exits_2_without_traceback(capsys):
    assert run(["train", "--nope"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --nope" in err and "Traceback" not in err
