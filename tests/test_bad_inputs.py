"""A corpus of malformed inputs (tests/data/bad/, cases and expected errors in EXPECTED.tsv):
the CLI answers each with exit code 2 and one clear line, no traceback, and writes nothing.

Kinds: ``data`` (a dataset path), ``config`` (a --config file), ``recommend`` / ``resume`` (files
laid over a freshly trained run folder, then `jnskr recommend RUN --all --output F` or `jnskr train
--resume RUN`: the run folder is left as it was and no output file appears)."""

import shutil
from pathlib import Path

import pytest

from jnskr.cli.main import run
from conftest import DATA

BAD = DATA / "bad"
GOOD = DATA / "kgat_tiny"
FAST = ["--set", "train.epochs=1", "--set", "jnskr.embed_dim=4", "--set", "eval.ks=[1]", "--device", "cpu"]


def _cases() -> list[tuple[str, str, str]]:
    rows = []
    for line in (BAD / "EXPECTED.tsv").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            case, kind, expected = line.split("\t")
            rows.append((case, kind, expected))
    return rows


CASES = _cases()


def test_every_case_is_listed():
    listed = {c for c, _, _ in CASES}
    present = {p.name for p in BAD.iterdir()} - {"EXPECTED.tsv", "README.md"}
    assert listed == present


LEVELS = ("error:", "DEBUG ", "INFO ", "WARNING ", "ERROR ", "CRITICAL ")


def _one_error(err: str, expected: str) -> None:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert all(ln.startswith(LEVELS) for ln in err.splitlines() if ln.strip()), err  # the rest: log records
    assert expected in " ".join(err.split()), err  # rich may wrap the line on narrow terminals


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("good") / "run"
    assert run(["-q", "train", "--data", str(GOOD.resolve()), "--out", str(out), *FAST]) == 0
    return out


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


RUN_CASES = [c for c in CASES if c[1] in ("recommend", "resume")]


@pytest.mark.parametrize("case,kind,expected", RUN_CASES, ids=[c for c, _, _ in RUN_CASES])
def test_corrupt_run_folder_exit_2_one_line_naming_the_file(case, kind, expected, finished_run, tmp_path, capsys):
    rundir = tmp_path / "run"
    shutil.copytree(finished_run, rundir)
    shutil.copytree(BAD / case, rundir, dirs_exist_ok=True)
    before = _snapshot(rundir)
    output = tmp_path / "recs.csv"
    args = ["recommend", str(rundir), "--all", "--output", str(output)] if kind == "recommend" else \
        ["train", "--resume", str(rundir)]
    assert run(args) == 2
    _one_error(capsys.readouterr().err, expected)
    assert _snapshot(rundir) == before
    assert not output.exists()


DATA_CONFIG_CASES = [c for c in CASES if c[1] in ("data", "config")]


@pytest.mark.parametrize("case,kind,expected", DATA_CONFIG_CASES, ids=[c for c, _, _ in DATA_CONFIG_CASES])
def test_bad_input_exit_2_one_line_nothing_written(case, kind, expected, tmp_path, capsys):
    path = BAD / case
    out = tmp_path / "run"
    if kind == "data":
        assert run(["data", "validate", str(path)]) == 2
        _one_error(capsys.readouterr().err, expected)
        assert run(["train", "--data", str(path), "--out", str(out), *FAST]) == 2
    else:
        assert run(["train", "--data", str(GOOD), "--config", str(path), "--out", str(out), *FAST]) == 2
    _one_error(capsys.readouterr().err, expected)
    assert not out.exists()
