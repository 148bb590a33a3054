"""A corpus of malformed inputs (tests/data/bad/, cases and expected errors in EXPECTED.tsv):
the CLI answers each with exit code 2 and one clear line, no traceback, and writes nothing."""

from pathlib import Path

import pytest

from jnskr.cli.main import run

BAD = Path(__file__).parent / "data" / "bad"
GOOD = Path(__file__).parent / "data" / "kgat_tiny"
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


def _one_error(err: str, expected: str) -> None:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert expected in " ".join(err.split()), err  # rich may wrap the line on narrow terminals


@pytest.mark.parametrize("case,kind,expected", CASES, ids=[c for c, _, _ in CASES])
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
