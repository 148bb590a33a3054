"""Terminal and spreadsheet output of user-provided ids and names (issue 20, class 5): control
characters never reach the terminal raw; CSV text cells that a spreadsheet would run as formulas
get a leading ' (OWASP), unless --raw-csv; number cells are never changed."""

import csv
import re

import numpy as np
import pytest

from conftest import synthetic_dataset, tiny_config
from jnskr.cli.common import visible
from jnskr.cli.main import run
from jnskr.export import formula_safe

HOSTILE_NAME = "\x1b[2J\x1b[1;1Hall clear\r\x01\u202eevil\u2028x\x7f"
HOSTILE_IDS = {0: "=HYPERLINK(\"http://x.example\",\"click\")", 1: "-2+3", 2: "+cmd", 3: "@SUM(A1)", 4: "\tTAB",
               5: "\x1b]0;title\x07bell", 6: "\uff1d1+1"}
RAW_CONTROLS = ("\x1b", "\x01", "\u202e", "\u2028", "\x07", "\x7f")


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    from jnskr.api import Recommender

    ds = synthetic_dataset()
    ids = ds.item_ids.astype(object)
    for i, raw in HOSTILE_IDS.items():
        ids[i] = raw
    ds.item_ids = np.array(ids.tolist())
    names = ds.item_names.astype(object)
    names[7] = HOSTILE_NAME
    names[8] = "=cmd|' /C calc'!A0"
    ds.item_names = np.array(names.tolist())
    out = tmp_path_factory.mktemp("hostile") / "jnskr"
    Recommender(tiny_config("jnskr", 3)).fit(ds, run_dir=out)
    return out


def test_visible_escapes_what_moves_or_recolours_the_terminal():
    assert visible("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert visible("x\ry\nz\x00\x7f\x9b") == "x\\x0dy\\x0az\\x00\\x7f\\x9b"
    assert visible("abc\u202edef\u2066") == "abc\\u202edef\\u2066"
    assert visible("lone \ud800") == "lone \\ud800"
    assert visible("Amélie 映画 [bold]") == "Amélie 映画 \\[bold]"  # ordinary text only loses markup


@pytest.fixture
def wide(monkeypatch):
    """Table cells on one line each (a captured console is 80 columns wide)."""
    from jnskr.cli.common import console

    monkeypatch.setattr(console, "_width", 400)


def _no_raw_controls(text: str) -> None:
    for c in RAW_CONTROLS:
        assert c not in text, repr(c)


def test_recommend_and_similar_tables_show_escapes(hostile_run, capsys, wide):
    assert run(["recommend", str(hostile_run), "--user", "u3", "--k", "40", "--keep-seen"]) == 0
    out = capsys.readouterr().out
    _no_raw_controls(out)
    assert "\\x1b" in out and "\\u202e" in out and "all clear" in out and "\\x09TAB" in out
    assert run(["similar", str(hostile_run), "--item", "i9", "--k", "39"]) == 0
    out = capsys.readouterr().out
    _no_raw_controls(out)
    assert "\\x1b]0;title\\x07bell" in out
    assert run(["similar", str(hostile_run), "--item", HOSTILE_IDS[5], "--k", "3"]) == 0
    out = capsys.readouterr().out  # the title names the item asked about
    _no_raw_controls(out)
    assert "\\x1b]0;title\\x07bell (Item 5)" in out


def test_new_user_tables_and_explanations_show_escapes(hostile_run, capsys, tmp_path, wide):
    (tmp_path / "history.txt").write_text("i9\ni10\n")
    assert run(["recommend", str(hostile_run), "--history", str(tmp_path / "history.txt"), "--k", "38",
                "--explain", "--facts", "2"]) == 0
    out = capsys.readouterr().out
    _no_raw_controls(out)
    assert "\\x1b[2J" in out and len(re.findall(r"^#\d+ .*= base", out, re.M)) == 38  # the hostile row too


def _read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_csv_text_cells_cannot_run_as_formulas(hostile_run, tmp_path, capsys):
    out = tmp_path / "recs.csv"
    assert run(["recommend", str(hostile_run), "--user", "u3", "--k", "40", "--keep-seen", "-o", str(out)]) == 0
    rows = _read(out)
    items = {r["item"] for r in rows}
    for raw in HOSTILE_IDS.values():
        want = "'" + raw if raw[0] in "=+-@\t\uff1d" else raw
        assert want in items, (raw, items)
    names = {r["item_name"] for r in rows}
    assert "'=cmd|' /C calc'!A0" in names and HOSTILE_NAME in names  # one cell, every character kept
    assert len(rows) == 40
    scores = [float(r["score"]) for r in rows]  # number cells stay numbers, negative ones too
    assert min(scores) < 0 and not any(r["score"].startswith("'") or r["rank"].startswith("'") for r in rows)
    raw_out = tmp_path / "raw.csv"
    assert run(["recommend", str(hostile_run), "--user", "u3", "--k", "40", "--keep-seen", "-o", str(raw_out),
                "--raw-csv"]) == 0
    assert set(HOSTILE_IDS.values()) <= {r["item"] for r in _read(raw_out)}
    jsonl = tmp_path / "recs.jsonl"  # only CSV is escaped: JSON Lines keep the ids as they are
    assert run(["recommend", str(hostile_run), "--user", "u3", "--k", "40", "--keep-seen", "-o", str(jsonl)]) == 0
    assert HOSTILE_IDS[0].replace('"', '\\"') in jsonl.read_text(encoding="utf-8")


def test_similar_csv_is_escaped_too(hostile_run, tmp_path):
    out = tmp_path / "similar.csv"
    assert run(["similar", str(hostile_run), "--item", HOSTILE_IDS[1], "--k", "39", "-o", str(out)]) == 0
    items = {r["item"] for r in _read(out)}
    assert "'" + HOSTILE_IDS[0] in items and "'+cmd" in items and "'@SUM(A1)" in items


def test_formula_safe_leaves_numbers_and_plain_text():
    assert formula_safe(-0.25) == -0.25 and formula_safe(3) == 3 and formula_safe(None) is None
    assert formula_safe("u3") == "u3" and formula_safe("") == "" and formula_safe("a=b") == "a=b"
    assert formula_safe("-1") == "'-1" and formula_safe("\rx") == "'\rx"
