"""Bad data and validation.  One test per class of broken input found by the attack on the readers
(each failed before its fix), pinning the library behaviour, including inputs a corpus cannot hold
(FIFOs, sizes, byte-order marks, valid odd inputs); the corpus `tests/data/bad/` (cases and
expected errors in EXPECTED.tsv), which the CLI answers with exit code 2 and one clear line, no
traceback, nothing written; validation (statistics, warnings, contract checks) and the seeded
splits."""

from __future__ import annotations

import logging
import math
import os
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jnskr.cli.main import run
from jnskr.data import Dataset, Interactions, KnowledgeGraph, load_dataset, read_kgat, read_recbole, read_tsv
from jnskr.data.memory import estimate_bytes
from jnskr.data.readers.kgat import read_list_file
from jnskr.data.readers.kgfeat import read_kg_feat
from jnskr.data.split import holdout_split, n_test_items, ratio_split
from jnskr.data.validate import TABLE, finish, validate_dataset
from jnskr.errors import DataError

from conftest import DATA

# ----------------------------------------------------------------------
# Reliability of the data path: one test per class of broken input found by the attack on the

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


@pytest.mark.parametrize("files, reader, problem", [
    ({"interactions.tsv": "user\titem\n"}, read_tsv, "interactions.tsv: no interactions after the header"),
    ({"interactions.csv": "user,item\n\n\n"}, read_tsv, "interactions.csv: no interactions after the header"),
    ({"h.inter": "user_id:token\titem_id:token\n"}, read_recbole, "h.inter: no interactions after the header"),
    ({"train.txt": "0\n1\n"}, read_kgat, "train.txt: no training interactions (nothing to learn from)"),
])
def test_header_only_is_refused_at_load(tmp_path, files, reader, problem):
    d = write(tmp_path / "h", files)
    assert str(error_of(reader, d)).endswith(problem)


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


# ----------------------------------------------------------------------
# A corpus of malformed inputs (tests/data/bad/, cases and expected errors in EXPECTED.tsv):

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


# ----------------------------------------------------------------------
# Validation (statistics, warnings, contract checks) and the seeded splits.

FIX = DATA


def make(train_rows, test_rows, n_items, kg=None, name="t") -> Dataset:
    def csr(rows_):
        u = [k for k, r in enumerate(rows_) for _ in r]
        i = [x for r in rows_ for x in r]
        return Interactions.from_pairs(np.array(u, dtype=np.int64), np.array(i, dtype=np.int64), len(rows_), n_items)

    return Dataset(name=name, n_users=len(train_rows), n_items=n_items, train=csr(train_rows), test=csr(test_rows), kg=kg)


def test_stats_and_warnings(caplog):
    kg = KnowledgeGraph(
        heads=np.array([0, 0, 0, 4]), relations=np.array([0, 0, 1, 0]), tails=np.array([4, 4, 4, 4]),
        n_entities=5, n_relations=2,
    )
    ds = make([[0, 1], [], [1]], [[1, 2], [3], []], n_items=4, kg=kg)
    with caplog.at_level(logging.WARNING, logger="jnskr"):
        finish(ds, log_warnings=True)
    s = ds.stats
    assert s["duplicate_triples"] == 1 and ds.kg.n_triples == 3
    assert ds.kg.heads.tolist() == [0, 0, 4] and ds.kg.relations.tolist() == [0, 1, 0]  # file order kept
    assert s["kg_self_loops"] == 1
    assert s["users_without_train"] == 1
    assert s["cold_test_items"] == 2  # items 2, 3
    assert s["items_without_kg"] == 3  # items 1, 2, 3
    assert s["test_in_train"] == 1  # (0, 1)
    assert s["test_users"] == 2
    assert s["density"] == pytest.approx(6 / 12)
    assert len(ds.warnings) == 6
    assert "1 duplicate KG triples removed" in ds.warnings
    assert all(f"t: {w}" in caplog.text for w in ds.warnings)


def test_validate_dataset_table_order():
    ds = read_kgat(FIX / "kgat_tiny")
    table = validate_dataset(ds)
    assert list(table)[: len(TABLE)] == list(TABLE)
    assert table["users"] == 4 and table["kg_triples"] == 4 and table["entities"] == 8 and table["relations"] == 2


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda ds: setattr(ds.train, "indices", np.array([1, 0, 2], dtype=np.int64)), "train: items not sorted and unique within a user"),
        (lambda ds: setattr(ds.train, "indices", np.array([0, 1, 9], dtype=np.int64)), "train: item id out of range 0..3"),
        (lambda ds: setattr(ds.test, "indptr", np.array([0, 1], dtype=np.int64)), "test: malformed CSR indptr"),
        (lambda ds: setattr(ds, "kg", KnowledgeGraph(np.array([0]), np.array([2]), np.array([1]), 5, 2)), "KG: relation id out of range 0..1"),
        (lambda ds: setattr(ds, "kg", KnowledgeGraph(np.array([0]), np.array([0]), np.array([1]), 3, 1)), "KG: 3 entities < 4 items (item i must be entity i)"),
    ],
)
def test_contract_violations(mutate, problem):
    ds = make([[0, 1], [2]], [[3], []], n_items=4)
    mutate(ds)
    with pytest.raises(DataError) as e:
        validate_dataset(ds)
    assert str(e.value) == problem


def test_n_test_items():
    assert [n_test_items(n, 0.2) for n in (0, 1, 2, 3, 4, 5, 7, 8, 10, 12, 13)] == [0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 3]
    assert n_test_items(2, 0.9) == 1  # at least one item stays in train


def test_ratio_split_partitions_and_is_seeded():
    rng = np.random.default_rng(0)
    u = rng.integers(0, 50, 2000)
    i = rng.integers(0, 300, 2000)
    tr, te = ratio_split(u, i, 50, 300, seed=7)
    tr2, te2 = ratio_split(u, i, 50, 300, seed=7)
    full = Interactions.from_pairs(u, i, 50, 300)
    assert np.array_equal(tr.indices, tr2.indices) and np.array_equal(te.indices, te2.indices)
    for x in range(50):
        a, b = set(tr.row(x).tolist()), set(te.row(x).tolist())
        assert not a & b and a | b == set(full.row(x).tolist())
        assert len(b) == n_test_items(len(full.row(x)), 0.2)
    _, te3 = ratio_split(u, i, 50, 300, seed=8)
    assert not np.array_equal(te.indices, te3.indices)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 29), max_size=25), min_size=1, max_size=12), st.integers(0, 10**6),
       st.floats(0.05, 0.5))
def test_holdout_split_properties(rows_, seed, ratio):
    u = np.array([k for k, r in enumerate(rows_) for _ in r], dtype=np.int64)
    i = np.array([x for r in rows_ for x in r], dtype=np.int64)
    train = Interactions.from_pairs(u, i, len(rows_), 30)
    part, valid = holdout_split(train, ratio=ratio, seed=seed)
    for x in range(train.n_users):
        n = len(train.row(x))
        a, b = set(part.row(x).tolist()), set(valid.row(x).tolist())
        assert not a & b and a | b == set(train.row(x).tolist())
        assert len(b) == (max(1, math.floor(ratio * n)) if n >= 2 else 0)
    part2, valid2 = holdout_split(train, ratio=ratio, seed=seed)
    assert np.array_equal(valid.indices, valid2.indices) and np.array_equal(valid.indptr, valid2.indptr)


def test_holdout_split_shapes():
    train = Interactions.from_pairs(np.array([0] * 20 + [1]), np.arange(21) % 20, 3, 20)
    part, valid = holdout_split(train, ratio=0.1, seed=0)
    assert isinstance(part, Interactions) and part.n_items == 20 and valid.n_users == 3
    assert valid.user_counts().tolist() == [2, 0, 0]
    assert part.user_counts().tolist() == [18, 1, 0]
