"""Reliability of the data path: one test per class of broken input found by the attack on the
readers (each failed before its fix).  The corpus `tests/data/bad/` holds a case of every class
for the CLI; these tests pin the library behaviour, including the inputs a corpus cannot hold
(FIFOs, sizes, byte-order marks, valid odd inputs)."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from jnskr.cli.main import run
from jnskr.data import load_dataset, read_kgat, read_recbole, read_tsv
from jnskr.data.memory import estimate_bytes
from jnskr.data.readers.kgat import read_list_file
from jnskr.data.readers.kgfeat import read_kg_feat
from jnskr.errors import DataError
from conftest import DATA

pytestmark = pytest.mark.filterwarnings("error")  # a numpy warning anywhere fails the test
BAD = DATA / "bad"


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "jnskr-data"
    monkeypatch.setenv("JNSKR_DATA", str(d))
    monkeypatch.setenv("COLUMNS", "300")
    return d


def write(folder: Path, files: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, c in files.items():
        (folder / n).write_bytes(c.encode() if isinstance(c, str) else c)
    return folder


def error_of(fn, *a, **k) -> DataError:
    with pytest.raises(DataError) as e:
        fn(*a, **k)
    assert "\n" not in str(e.value)
    return e.value


# ----------------------------------------------------------------------------- Unicode digits


def test_unicode_digit_remap_id_is_refused_not_a_crash(tmp_path):
    p = write(tmp_path, {"user_list.txt": "org_id remap_id\na 0\nb \u00b2\n"}) / "user_list.txt"
    assert str(error_of(read_list_file, p)) == f"{p}:3: remap id '\u00b2' is not a non-negative integer"
    glued = write(tmp_path / "y", {"item_list.txt": "org_id remap_id freebase_id\nab \u00b9ab\n"}) / "item_list.txt"
    assert "remap id" in str(error_of(read_list_file, glued))


def test_unicode_digit_ids_in_kgat_interactions_are_refused(tmp_path):
    d = write(tmp_path / "k", {"train.txt": "0 1\n1 \u00b2\n"})
    assert str(error_of(read_kgat, d)) == f"{d / 'train.txt'}:2: non-integer token '\u00b2'"


def test_unicode_digit_ids_in_tsv_and_recbole_are_labels(tmp_path):
    ds = read_tsv(write(tmp_path / "t", {"x.tsv": "\u00b2\t1\n\u00b2\t2\n3\t\u00b2\n"}) / "x.tsv")
    assert sorted(ds.user_ids.tolist()) == ["3", "\u00b2"]
    r = write(tmp_path / "r", {"r.inter": "user_id:token\titem_id:token\n\u0661\t1\n\u0661\t2\n"})
    assert read_recbole(r).user_ids.tolist() == ["\u0661"]


# ----------------------------------------------------------------------------- kg_feat.npz


def _feat(path: Path, **over) -> Path:
    arrays = dict(format=np.array("csr"), indptr=np.array([0, 1, 2]), indices=np.array([0, 1]),
                  data=np.array([1.0, 2.0]), shape=np.array([2, 3]))
    arrays.update(over)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


@pytest.mark.parametrize("over, problem", [
    (dict(shape=np.array([2, 3, 4])), "shape must be two non-negative integers (rows, columns), got [2, 3, 4]"),
    (dict(shape=np.array(5)), "shape must be two non-negative integers (rows, columns), got 5"),
    (dict(shape=np.array([[2], [3]])), "shape must be two non-negative integers"),
    (dict(shape=np.array([2.0, 3.0])), "shape must be two non-negative integers"),
    (dict(data=np.array(["a", "b"])), "data must be a 1-D array of numbers"),
    (dict(data=np.array([1.0, np.inf])), "counts must be finite numbers"),
    (dict(indptr=np.array([0, 2, 1]), indices=np.array([0]), data=np.array([1.0])),
     "indptr must rise from 0 to the number of entries"),
    (dict(indptr=np.array([1, 1, 2])), "indptr must rise from 0"),
    (dict(indices=np.array([0.0, 1.0])), "indices must be a 1-D integer array"),
    (dict(format=np.array(7)), "sparse format None is not supported"),
])
def test_malformed_kg_feat(tmp_path, over, problem):
    p = _feat(tmp_path / "kg_feat.npz", **over)
    e = error_of(read_kg_feat, p, 2)
    assert str(e).startswith(f"{p}: ") and problem in str(e)


def test_kg_feat_missing_member_and_folder(tmp_path):
    p = tmp_path / "kg_feat.npz"
    with open(p, "wb") as fh:
        np.savez(fh, format=np.array("csr"))
    assert "no indptr, indices, data, shape" in str(error_of(read_kg_feat, p, 2))
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "kg_feat.npz").mkdir()
    assert str(error_of(read_kg_feat, tmp_path / "f" / "kg_feat.npz", 2)).endswith("is a folder, not a file")


# ----------------------------------------------------------------------------- header only


@pytest.mark.parametrize("files, reader, problem", [
    ({"interactions.tsv": "user\titem\n"}, read_tsv, "interactions.tsv: no interactions after the header"),
    ({"interactions.csv": "user,item\n\n\n"}, read_tsv, "interactions.csv: no interactions after the header"),
    ({"h.inter": "user_id:token\titem_id:token\n"}, read_recbole, "h.inter: no interactions after the header"),
    ({"train.txt": "0\n1\n"}, read_kgat, "train.txt: no training interactions (nothing to learn from)"),
])
def test_header_only_is_refused_at_load(tmp_path, files, reader, problem):
    d = write(tmp_path / "h", files)
    assert str(error_of(reader, d)).endswith(problem)


# ----------------------------------------------------------------------------- sizes


def test_huge_user_id_is_refused_before_allocating(tmp_path):
    d = write(tmp_path / "big", {"train.txt": "0 1\n99999999 2\n"})
    tracemalloc.start()
    try:
        e = error_of(read_kgat, d, max_memory=8e9)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(e)
    assert msg.startswith(f"{d / 'train.txt'}:2: user id 99999999 means 100,000,000 users and 3 items: about ")
    assert "over the 8.0 GB memory limit" in msg and "data.max_memory_gb" in msg
    assert peak < 50e6  # nothing of the 100-million-row size was allocated


def test_kg_entity_and_kg_feat_shape_sizes_are_checked(tmp_path):
    d = write(tmp_path / "e", {"train.txt": "0 1\n", "kg_final.txt": "0 0 1\n1 0 99999999\n"})
    msg = str(error_of(read_kgat, d, max_memory=1e9))
    assert msg.startswith(f"{d / 'kg_final.txt'}:2: entity id 99999999 means ")
    f = write(tmp_path / "f", {"train.txt": "0 1\n"})
    _feat(f / "kg_feat.npz", shape=np.array([2, 10**12]))
    assert "shape (2, 1000000000000) means" in str(error_of(read_kgat, f, max_memory=1e9))


def test_estimate_bytes():
    assert estimate_bytes(0, 0) == 0
    base = estimate_bytes(1000, 100, n_interactions=10_000)
    assert base == 1000 * 40 + 100 * 56 + 10_000 * 56
    assert estimate_bytes(10**8, 0, embed_dim=64) - estimate_bytes(10**8, 0) == 10**8 * 64 * 4 * 4
    assert estimate_bytes(-5, 3) == estimate_bytes(0, 3)


# ----------------------------------------------------------------------------- what a path is


def test_train_txt_that_is_a_folder_fifo_or_link_loop(tmp_path):
    d = write(tmp_path / "d", {"test.txt": "0 1\n"})
    (d / "train.txt").mkdir()
    assert str(error_of(read_kgat, d)) == f"{d / 'train.txt'}: is a folder, not a file"
    f = write(tmp_path / "f", {"test.txt": "0 1\n"})
    os.mkfifo(f / "train.txt")
    assert str(error_of(read_kgat, f)) == f"{f / 'train.txt'}: is a FIFO (named pipe), not a regular file"
    loop = write(tmp_path / "l", {"test.txt": "0 1\n"})
    os.symlink("train.txt", loop / "train.txt")
    assert str(error_of(read_kgat, loop)) == f"{loop / 'train.txt'}: symbolic link loop"
    broken = write(tmp_path / "b", {"test.txt": "0 1\n"})
    os.symlink("elsewhere.txt", broken / "train.txt")
    assert str(error_of(read_kgat, broken)) == f"{broken / 'train.txt'}: broken symbolic link (to elsewhere.txt)"
    t = write(tmp_path / "t", {"train.txt": "0 1\n"})
    (t / "test.txt").mkdir()
    assert str(error_of(read_kgat, t)) == f"{t / 'test.txt'}: is a folder, not a file"


def test_kg_tsv_that_is_a_folder_is_not_skipped(tmp_path):
    d = write(tmp_path / "k", {"interactions.tsv": "u\ti\n"})
    (d / "kg.tsv").mkdir()
    assert str(error_of(read_tsv, d)) == f"{d / 'kg.tsv'}: is a folder, not a file"
    r = write(tmp_path / "r", {"r.inter": "user_id:token\titem_id:token\n1\t2\n"})
    (r / "r.kg").mkdir()
    assert str(error_of(read_recbole, r)) == f"{r / 'r.kg'}: is a folder, not a file"


# ----------------------------------------------------------------------------- separators, BOM


def test_recbole_header_separated_by_spaces(tmp_path):
    d = write(tmp_path / "s", {"s.inter": "user_id:token item_id:token\n1 2\n"})
    assert str(error_of(read_recbole, d)) == (
        f"{d / 's.inter'}:1: header fields separated by spaces ('user_id:token item_id:token'): RecBole atomic "
        f"files separate fields with tabs")
    rows = write(tmp_path / "r", {"r.inter": "user_id:token\titem_id:token\n1 2\n"})
    assert "(fields separated by spaces? the separator here is a tab)" in str(error_of(read_recbole, rows))


def test_byte_order_mark_is_accepted_everywhere(tmp_path):
    bom = b"\xef\xbb\xbf"
    k = write(tmp_path / "k", {"train.txt": bom + b"0 1 2\n1 2\n", "test.txt": bom + b"0 3\n",
                               "kg_final.txt": bom + b"0 0 4\n", "user_list.txt": bom + b"org_id remap_id\na 0\nb 1\n"})
    ds = read_kgat(k)
    assert ds.train.nnz == 3 and ds.kg.n_triples == 1 and ds.user_ids.tolist() == ["a", "b"]
    t = write(tmp_path / "t", {"interactions.tsv": bom + b"user\titem\nu\ti\nu\tj\n"})  # 2 items: a test pair
    assert read_tsv(t).user_ids.tolist() == ["u"]
    r = write(tmp_path / "r", {"r.inter": bom + b"user_id:token\titem_id:token\n1\t2\n1\t3\n"})
    assert read_recbole(r).n_users == 1
    u16 = write(tmp_path / "u16", {"train.txt": "0 1\n".encode("utf-16")})
    assert "UTF-16" in str(error_of(read_kgat, u16))


# ----------------------------------------------------------------------------- ids, headers, quotes


def test_duplicate_remap_ids(tmp_path):
    d = write(tmp_path / "d", {"train.txt": "0 0\n1 1\n", "item_list.txt": "org_id remap_id\nx 0\ny 0\n"})
    assert str(error_of(read_kgat, d)) == f"{d / 'item_list.txt'}:3: remap id 0 appears twice (first on line 2)"


def test_repeated_header_line(tmp_path):
    d = write(tmp_path / "t", {"interactions.csv": "user,item\nu1,i1\nuser,item\nu2,i2\n"})
    assert str(error_of(read_tsv, d)) == f"{d / 'interactions.csv'}:3: the header line again (files concatenated?)"
    r = write(tmp_path / "r", {"r.inter": "user_id:token\titem_id:token\n1\t2\nuser_id:token\titem_id:token\n"})
    assert str(error_of(read_recbole, r)).endswith("r.inter:3: the header line again (files concatenated?)")


def test_quoted_csv_fields(tmp_path):
    d = write(tmp_path / "q", {"interactions.csv": 'user,item\n"u,1",i1\nu2,"i,2"\n"u,1","i,2"\n'})
    ds = read_tsv(d)
    assert ds.user_ids.tolist() == ["u,1", "u2"] and ds.item_ids.tolist() == ["i,2", "i1"]
    bad = write(tmp_path / "b", {"interactions.csv": 'user,item\nu1,"i1\nu2,i2\n'})
    assert "interactions.csv:2: bad CSV quoting" in str(error_of(read_tsv, bad))
    junk = write(tmp_path / "j", {"interactions.csv": 'user,item\nu1,"i1"x\n'})
    assert "interactions.csv:2: bad CSV quoting" in str(error_of(read_tsv, junk))


# ----------------------------------------------------------------------------- the CLI


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


CORPUS = sorted(p.name for p in BAD.iterdir() if p.is_dir() or p.is_symlink())


@pytest.mark.parametrize("case", CORPUS)
def test_import_of_every_bad_case_writes_nothing(case, capsys, data_home):
    assert run(["data", "import", str(BAD / case), "--name", "x"]) == 2
    _one_error_line(capsys.readouterr().err)
    assert not (data_home / "x").exists()
    assert not data_home.exists() or not [p for p in data_home.rglob("*") if p.is_file() and "cache" not in p.parts]


def test_fifo_through_the_cli(tmp_path, capsys):
    d = write(tmp_path / "f", {"test.txt": "0 1\n"})
    os.mkfifo(d / "train.txt")
    assert run(["data", "validate", str(d)]) == 2
    assert _one_error_line(capsys.readouterr().err) == f"error: {d / 'train.txt'}: is a FIFO (named pipe), not a regular file"


def test_import_name_too_long_and_os_errors(tmp_path, capsys, monkeypatch):
    good = DATA / "kgat_tiny"
    assert run(["data", "import", str(good), "--name", "n" * 300]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "invalid dataset name" in line and "at most 100" in line and len(line) < 300
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("JNSKR_DATA", str(blocker))  # the data folder is a file
    assert run(["data", "import", str(good), "--name", "ok"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(blocker) in line


def test_numeric_warnings_do_not_leak(tmp_path):
    """The whole load path under `-W error`: odd numbers are one-line errors, never warnings."""
    d = write(tmp_path / "n", {"x.csv": "user,item,weight\nu,i,1e400\nu,j,2\n"})
    assert "is not a finite number" in str(error_of(load_dataset, d / "x.csv", weight="confidence", cache=False))
    f = write(tmp_path / "f", {"train.txt": "0 0 1\n"})
    _feat(f / "kg_feat.npz", data=np.array([1e300, 2.0]))
    assert "counts must be finite numbers below 2**53" in str(error_of(load_dataset, f, cache=False))
