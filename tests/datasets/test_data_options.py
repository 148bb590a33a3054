"""One set of data options for every command that reads data (issue 21, item 2).

Was: `jnskr train` lacked the flags of `data validate` / `data import` (`--interactions`,
`--links`, `--kg`, `--user-col`, ...): its own error suggested `--interactions FILE`, and `train`
then answered "No such option"."""

from __future__ import annotations

import json

import pytest
import typer
import yaml

from conftest import synthetic_dataset
from jnskr.cli.dataopts import NAMES
from jnskr.cli.main import app, run, _register
from test_cli import FAST


def _plays_folder(tmp_path):
    """A TSV folder whose interactions file has another name and named columns."""
    ds = synthetic_dataset()
    d = tmp_path / "shop"
    d.mkdir()
    rows = ["customer\tproduct"] + [f"c{u}\tp{v}" for u in range(ds.n_users) for v in
                                      [*ds.train.row(u).tolist(), *ds.test.row(u).tolist()]]
    (d / "plays.tsv").write_text("\n".join(rows) + "\n")
    return d


def test_train_takes_the_data_flags_its_error_suggests(tmp_path, capsys):
    d = _plays_folder(tmp_path)
    out = tmp_path / "run"
    assert run(["train", "--data", str(d), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "--interactions FILE" in err and err.count("\n") == 1 and not out.exists()
    args = ["train", "--data", str(d), "--interactions", "plays.tsv", "--user-col", "customer", "--item-col",
            "product", "--test-seed", "7", "--out", str(out), *FAST]
    assert run(args) == 0, capsys.readouterr().err
    cfg = yaml.safe_load((out / "config.yaml").read_text())["data"]
    assert cfg["files"]["interactions"] == "plays.tsv" and cfg["columns"] == {**cfg["columns"], "user": "customer",
                                                                             "item": "product"}
    assert cfg["test_seed"] == 7
    layers = json.loads((out / "environment.json").read_text())["config_layers"]
    assert any("data.files.interactions" in layer for layer in layers)
    ids = json.loads((out / "id_maps.json").read_text())
    assert "customer" not in ids["user_ids"] and "c0" in ids["user_ids"]


def test_bad_data_flags_are_one_line_and_write_nothing(tmp_path, capsys):
    d = _plays_folder(tmp_path)
    out = tmp_path / "run"
    for bad in (["--test-ratio", "1.5"], ["--weight", "sometimes"], ["--sep", "abcd"]):
        assert run(["train", "--data", str(d), "--interactions", "plays.tsv", *bad, "--out", str(out), *FAST]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err, err
        assert not out.exists()
    assert run(["train", "--resume", str(tmp_path), "--interactions", "plays.tsv"]) == 2
    assert "--resume takes only the run folder" in capsys.readouterr().err
    assert run(["evaluate", str(tmp_path), "--interactions", "plays.tsv"]) == 2


def _commands():
    _register()
    root = typer.main.get_command(app)
    data = root.commands["data"]
    return {"train": root.commands["train"], "tune": root.commands["tune"], "evaluate": root.commands["evaluate"],
            "data import": data.commands["import"], "data validate": data.commands["validate"]}


@pytest.mark.parametrize("name", ["train", "tune", "evaluate", "data import", "data validate"])
def test_every_command_that_reads_data_has_the_same_flags(name):
    cmd = _commands()[name]
    params = {p.name: p for p in cmd.params}
    assert set(NAMES) <= set(params), sorted(set(NAMES) - set(params))
    ref = {p.name: p for p in _commands()["data validate"].params}
    for n in NAMES:
        assert params[n].help == ref[n].help and set(params[n].opts) <= set(ref[n].opts)
