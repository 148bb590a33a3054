"""`jnskr data ...` round trips through the CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from jnskr.cli.main import run
from jnskr.data import registry as reg

FIX = Path(__file__).parent / "data"
SHARED = Path(__file__).parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "jnskr-data"
    monkeypatch.setenv("JNSKR_DATA", str(d))
    monkeypatch.setenv("COLUMNS", "200")
    return d


def test_validate_ok_prints_table(capsys):
    rc = run(["data", "validate", str(FIX / "kgat_tiny")])
    out = capsys.readouterr().out
    assert rc == 0
    for label in ("users", "items", "train pairs", "test pairs", "KG triples", "entities", "relations",
                  "cold test items", "items without KG facts"):
        assert label in out
    assert "warning: 1 duplicate train items removed" in out
    assert "ok: " in out


@pytest.mark.parametrize("fmt, path", [("recbole", "recbole_tiny"), ("tsv", "tsv_tiny"), (None, "tsv_tiny")])
def test_validate_formats(capsys, fmt, path):
    args = ["data", "validate", str(FIX / path)] + (["--format", fmt] if fmt else [])
    assert run(args) == 0
    assert "train pairs" in capsys.readouterr().out


def test_validate_error_is_one_line_exit_2(tmp_path, capsys):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "train.txt").write_text("0 1\n1 2 zz\n")
    rc = run(["data", "validate", str(d)])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{d / 'train.txt'}:2: non-integer token 'zz'" in err
    assert len(err.strip().splitlines()) == 1


def test_validate_wrong_format_option(capsys):
    assert run(["data", "validate", str(FIX / "kgat_tiny"), "--format", "csv"]) == 2
    assert "unknown format 'csv'" in capsys.readouterr().err


def test_validate_missing_train_real_data(capsys):
    d = SHARED / "yelp2018"
    if not d.is_dir():
        pytest.skip("shared data not present")
    assert run(["data", "validate", str(d)]) == 2
    assert "train.txt: missing file: a KGAT folder needs train.txt" in capsys.readouterr().err


def test_import_list_and_load(capsys, data_home):
    rc = run(["data", "import", str(FIX / "recbole_tiny"), "--format", "recbole", "--name", "tiny"])
    out = capsys.readouterr().out
    assert rc == 0 and "imported as 'tiny'" in out
    assert (data_home / "tiny" / "dataset.npz").is_file()
    assert run(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "imported" in out and "ml-100k" in out and "not fetched" in out
    assert run(["data", "validate", "tiny"]) == 0


def test_import_bad_path(capsys, tmp_path):
    assert run(["data", "import", str(tmp_path / "nope"), "--format", "kgat", "--name", "x"]) == 2
    assert "nope" in capsys.readouterr().err


def test_fetch_prints_licence_and_offline_hint(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(reg, "KGAT_BASE_URL", (tmp_path / "offline").as_uri())
    rc = run(["data", "fetch", "amazon-book"])
    cap = capsys.readouterr()
    assert rc == 2
    assert "research use only" in cap.out and "KDD 2019" in cap.out and "SIGIR 2020" in cap.out
    assert "jnskr data import /path/to/amazon-book --format kgat --name amazon-book" in cap.err


def test_fetch_ml100k_prints_citations(capsys, monkeypatch):
    def fake(dest=None):
        Path(dest).mkdir(parents=True)
        for f in (FIX / "recbole_tiny").iterdir():
            (Path(dest) / f.name.replace("recbole_tiny", "ml-100k")).write_bytes(f.read_bytes())
        return Path(dest)

    monkeypatch.setattr(reg, "fetch_ml100k", fake)
    assert run(["data", "fetch", "ml-100k"]) == 0
    out = capsys.readouterr().out
    assert "Harper" in out and "KB4Rec" in out and "fetched into" in out


def test_fetch_unknown(capsys):
    assert run(["data", "fetch", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
