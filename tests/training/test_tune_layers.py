"""`jnskr tune --config FILE` layers the file over a preset exactly as `jnskr train` does
(`jnskr.config.layered_dict`), and `--preset` combines with `--config` (issue 21, item 1 for tune).
Was: tune read the file alone (a file holding only `data:` started every trial from the model
classes' defaults), and refused `--preset` with `--config`."""

import pytest
import yaml

from jnskr.config import build_config, config_to_dict, validate_config
from jnskr.tune import base_dict


def test_a_partial_file_is_layered_over_the_default_preset(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("jnskr:\n  c0: 21\n")
    base = base_dict(None, f, None, ["train.epochs=3"])
    assert base["jnskr"]["c0"] == 21 and base["train"]["epochs"] == 3
    # everything else is the default preset's, as `jnskr train --config mine.yaml` gets it
    want = config_to_dict(build_config(file=f, overrides=["train.epochs=3"]))
    assert config_to_dict(validate_config(base, "tune")) == want


def test_the_files_preset_key_and_an_explicit_preset(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("preset: ml-100k\njnskr:\n  c0: 21\n")
    want = config_to_dict(build_config(file=f))
    assert config_to_dict(validate_config(base_dict(None, f, None, []), "tune")) == want
    f.write_text("jnskr:\n  c0: 21\n")
    want = config_to_dict(build_config(preset="ml-100k", file=f))
    got = base_dict("ml-100k", f, {"device": "cpu"}, [])
    assert got["device"] == "cpu"
    assert config_to_dict(validate_config({**got, "device": want["device"]}, "tune")) == want


def test_cli_tune_takes_preset_and_config_together(tmp_path, capsys):
    pytest.importorskip("optuna")
    from test_tune import FAST, _write_kgat
    from jnskr.cli.main import run

    data = _write_kgat(tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text("space:\n  jnskr.c0: [20, 30]\ntrials: 1\n")
    f = tmp_path / "mine.yaml"
    f.write_text("jnskr:\n  c1: 25\n")
    out = tmp_path / "best.yaml"
    args = ["tune", str(space), "--data", str(data), "--preset", "ml-100k", "--config", str(f), "--study",
            str(tmp_path / "s.db"), "--out", str(out), *sum((["--set", s] for s in FAST if "c1" not in s), [])]
    assert run(args) == 0, capsys.readouterr().err
    best = yaml.safe_load(out.read_text())
    assert best["jnskr"]["c1"] == 25
    assert best["jnskr"]["lambda_emb"] == build_config("ml-100k").jnskr.lambda_emb
