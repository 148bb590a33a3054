"""Issue 21 item 1: `--config FILE` is "default preset + my file"; `--preset` and `--config`
combine; the model classes' defaults are the `default` preset; the run records its layers; the
falling-validation warning names the user's file, not "the preset"."""

import json

import pytest
import yaml

from jnskr.config import Config, build_config, config_to_dict
from jnskr.errors import ConfigError
from jnskr.progress import FallingWatch, check_falling, default_progress


def _resolved(d: dict) -> dict:
    """A config dict with `jnskr.attention_dim: null` read as what it means (embed_dim // 2)."""
    if d["jnskr"].get("attention_dim") is None:
        d["jnskr"]["attention_dim"] = d["jnskr"]["embed_dim"] // 2
    return d


def test_class_defaults_are_the_default_preset():
    """Was: the classes held the paper's Amazon-book values (keep_prob [0.8, 0.7], beta 0.5,
    lambda_emb 1e-5), so a config file without a jnskr: section trained with them."""
    assert _resolved(config_to_dict(Config())) == _resolved(config_to_dict(build_config("default")))


def test_a_data_only_file_trains_with_the_default_preset(tmp_path):
    """The issue's case: a file holding only the `data:` section (R@20 0.1379 instead of 0.2818)."""
    f = tmp_path / "mine.yaml"
    f.write_text("data:\n  path: plays.tsv\n  weight: confidence\n")
    cfg = build_config(file=f)
    default = build_config("default")
    assert cfg.jnskr == default.jnskr and cfg.train == default.train
    assert cfg.data.path == "plays.tsv" and cfg.data.weight == "confidence"
    assert cfg.data.split_seed == default.data.split_seed
    assert cfg.layers() == ["preset default", str(f)]


def test_preset_and_file_combine(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("jnskr:\n  c0: 123\n")
    cfg = build_config("amazon-book", file=f, overrides=["train.epochs=7"])
    book = build_config("amazon-book")
    assert cfg.jnskr.c0 == 123 and cfg.jnskr.keep_prob == book.jnskr.keep_prob and cfg.train.epochs == 7
    assert cfg.layers() == ["preset amazon-book", str(f), "--set train.epochs=7"]


def test_preset_key_in_the_file(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("preset: amazon-book\ntrain:\n  epochs: 3\n")
    cfg = build_config(file=f)
    assert cfg.jnskr.keep_prob == build_config("amazon-book").jnskr.keep_prob and cfg.train.epochs == 3
    assert cfg.layers()[0] == "preset amazon-book"
    assert build_config("ml-100k", file=f).layers()[0] == "preset ml-100k"  # --preset wins over the file's key


@pytest.mark.parametrize("text,needle", [
    ("preset: nosuch\n", "unknown preset 'nosuch'"),
    ("preset: [1]\n", "preset: expected a preset name"),
    ("jnskr:\n  c0: -1\n", "mine.yaml: jnskr.c0"),       # a bad value is blamed on the file
    ("nosuch: 1\n", "mine.yaml: unknown key 'nosuch'"),
])
def test_bad_files_name_the_file(tmp_path, text, needle):
    f = tmp_path / "mine.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[")):
        build_config(file=f)


def test_cli_combines_preset_and_config_and_records_layers(tmp_path, capsys):
    """Was: 'give either --preset or --config, not both' (exit 2)."""
    from conftest import synthetic_dataset
    from test_cli import FAST, write_kgat
    from jnskr.cli.main import run

    data = write_kgat(synthetic_dataset(), tmp_path / "synth")
    f = tmp_path / "mine.yaml"
    f.write_text("jnskr:\n  c0: 21\n")
    out = tmp_path / "run"
    assert run(["train", "--data", str(data), "--preset", "ml-100k", "--config", str(f), "--out", str(out),
                *FAST]) == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["jnskr"]["c1"] == 20 and cfg["jnskr"]["lambda_emb"] == build_config("ml-100k").jnskr.lambda_emb
    layers = json.loads((out / "environment.json").read_text())["config_layers"]
    assert layers[:2] == ["preset ml-100k", str(f)] and layers[2].startswith("command line (")
    assert "--set train.epochs=5" in layers


def test_falling_warning_names_the_file_not_the_preset():
    scores = [(2, 0.3), (4, 0.2), (6, 0.1)]
    assert "the preset may not suit" in check_falling(scores)
    msg = check_falling(scores, layers=["preset default", "mine.yaml", "--set train.epochs=5"])
    assert "the preset may" not in msg and "the settings of mine.yaml (over preset default)" in msg
    assert "the preset ml-100k may not suit" in check_falling(scores, layers=["preset ml-100k"])
    seen = []
    progress = default_progress(FallingWatch(emit=seen.append), ["preset default", "mine.yaml"])
    progress.start(0, 10, 1)
    for epoch, s in scores:
        progress.epoch_end({"epoch": epoch, "valid": {"recall@20": s}})
    assert len(seen) == 1 and "mine.yaml" in seen[0]
