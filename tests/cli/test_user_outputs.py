"""Output files and folders that belong to the user (issue 20, classes 2 and 7): `report` writes
only into run folders and replaces only what it wrote; `export-embeddings` never replaces a file
an earlier export did not write; malformed metrics, config or log lines are one error line."""

from __future__ import annotations

import json

import pytest

from jnskr.cli.main import run
from conftest import DATA
from test_reliability_files import FAST, _one_error


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("outputs") / "run"
    assert run(["train", "--data", str(DATA / "kgat_tiny"), "--out", str(out), *FAST]) == 0
    return out


def _copy(run_dir, dest):
    import shutil

    shutil.copytree(run_dir, dest)
    return dest


def test_report_refuses_a_folder_it_does_not_own(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.json").write_text(json.dumps({"protocol": "standard", "test": {}}))
    assert run(["report", str(mine), "--no-plot"]) == 2
    _one_error(capsys.readouterr().err, "not a run folder")
    assert sorted(p.name for p in mine.iterdir()) == ["metrics.json"]  # no report.txt written there


def test_report_keeps_a_report_txt_it_did_not_write(trained, tmp_path, capsys):
    r = _copy(trained, tmp_path / "r")
    (r / "report.txt").write_text("my own notes\n")
    assert run(["report", str(r), "--no-plot"]) == 2
    _one_error(capsys.readouterr().err, "report.txt", "not written by jnskr")
    assert (r / "report.txt").read_text() == "my own notes\n"
    assert run(["report", str(r), "--no-plot", "--overwrite"]) == 0
    assert (r / "report.txt").read_text().startswith("run        ")
    assert run(["report", str(r), "--no-plot"]) == 0  # its own summary: replaced without asking


def test_report_png_output_checks(trained, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    r = _copy(trained, tmp_path / "r")
    assert run(["report", str(r), "-o", str(tmp_path / "x.yaml")]) == 2
    _one_error(capsys.readouterr().err, ".png")
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG my holiday")
    assert run(["report", str(r), "-o", str(photo)]) == 2
    _one_error(capsys.readouterr().err, "not written by jnskr")
    assert photo.read_bytes() == b"\x89PNG my holiday" and not (r / "report.txt").exists()  # nothing written
    out = tmp_path / "curves.png"
    assert run(["report", str(r), "-o", str(out)]) == 0
    assert run(["report", str(r), "-o", str(out)]) == 0  # its own PNG (marked in its metadata)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name,text,words", [
    ("metrics.json", "[1, 2]", "expected a JSON object"),
    ("metrics.json", '{"valid": {"recall@20": "high"}, "test": {"recall@20": "x"}, "best_epoch": "?"}', None),
    ("config.yaml", "- a\n- b\n", "expected a mapping"),
    ("config.yaml", "a: [1\n", "not readable YAML"),
    ("log.jsonl", '{"epoch": 1}\n[1]\n', "log.jsonl:2: not an epoch record"),
    ("log.jsonl", '{"epoch": 1, "seconds": "slow", "valid": 3}\n', "log.jsonl:1: valid must be"),
    ("log.jsonl", '{"epoch": 1}\n{"epoch": \n', "log.jsonl:2: not a JSON record"),
])
def test_report_on_malformed_files_is_one_line(name, text, words, trained, tmp_path, capsys):
    r = _copy(trained, tmp_path / "r")
    (r / name).write_text(text)
    rc = run(["report", str(r), "--no-plot"])
    if words is None:  # wrong types inside a valid object: shown as "-", never a traceback
        assert rc == 0
        return
    assert rc == 2
    _one_error(capsys.readouterr().err, words)


def test_export_embeddings_keeps_the_users_files(trained, tmp_path, capsys):
    out = tmp_path / "emb"
    out.mkdir()
    (out / "users.tsv").write_text("my users\n")
    (out / "readme.txt").write_text("mine\n")
    assert run(["export-embeddings", str(trained), "-o", str(out)]) == 2
    _one_error(capsys.readouterr().err, "users.tsv", "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == ["readme.txt", "users.tsv"]
    assert (out / "users.tsv").read_text() == "my users\n"
    assert run(["export-embeddings", str(trained), "-o", str(out), "--overwrite"]) == 0
    assert (out / "readme.txt").read_text() == "mine\n" and (out / "manifest.json").is_file()
    assert run(["export-embeddings", str(trained), "-o", str(out)]) == 0  # its own earlier export: replaced
