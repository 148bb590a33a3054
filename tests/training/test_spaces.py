"""The shipped search spaces (`jnskr tune ials|jnskr`) cover the iALS region and d up to 512, and
every bound of every key is a valid config value."""

import pytest
import yaml

from conftest import synthetic_dataset
from jnskr import spaces
from jnskr.tune import base_dict, check_space, load_space


@pytest.mark.parametrize("name", ["ials", "jnskr"])
def test_shipped_spaces_cover_the_ials_region_up_to_d_512(name):
    space = load_space(name)
    keys = {p.key.split(".")[1]: p for p in space.params}
    assert max(keys["embed_dim"].choices) == 512 and min(keys["embed_dim"].choices) <= 64
    assert keys["reg"].low <= 1.0 and keys["reg"].high >= 100.0  # implicit's tuned λ: 30-100 on our data
    assert keys["alpha"].low <= 1.0 and keys["alpha"].high >= 39.0  # implicit's tuned α: 5-40
    assert any(s.endswith(".h=fixed") for s in space.sets) or "fixed" in keys["h"].choices
    check_space(base_dict("default", None, None, space.sets), space)  # every bound validates
    assert space.source == spaces.text(name) and yaml.safe_load(space.source)["trials"] >= 40


def test_a_file_of_the_same_name_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ials").write_text("space:\n  enmf.reg: [1, 2]\n")
    assert [p.key for p in load_space("ials").params] == ["enmf.reg"]


def test_an_unknown_space_names_the_shipped_ones(tmp_path):
    from jnskr.errors import ConfigError

    with pytest.raises(ConfigError, match="shipped spaces: ials, jnskr"):
        load_space(tmp_path / "nope.yaml")


def test_tune_runs_a_shipped_space(tmp_path, capsys):
    pytest.importorskip("optuna")
    from test_cli import write_kgat

    from jnskr.cli.main import run

    data = write_kgat(synthetic_dataset(), tmp_path / "synth")
    study = tmp_path / "s.db"
    assert run(["tune", "ials", "--data", str(data), "--study", str(study), "--trials", "2",
                "--set", "train.epochs=3", "--set", "enmf.embed_dim=8"]) == 0
    out = capsys.readouterr().out
    assert "trial 1 complete" in out and (tmp_path / "s-best.yaml").is_file()
