"""Readers: KGAT, RecBole atomic files, TSV/CSV, kg_feat.npz and their quirks; delimited data with
links, names, configurable files, columns and separators; weights as a threshold or as confidence
(`Interactions.values`); KG linking rules; the three splits; provenance; the Last.fm originals end
to end; headers of unknown names and empty splits (issue 21 item 4)."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np
import pytest

from jnskr.cli.main import run
from jnskr.data import detect_format, load_dataset, read_kgat, read_recbole, read_tsv
from jnskr.data.arrays import Interactions
from jnskr.data.cache import load_saved, save_dataset
from jnskr.data.config import DataConfig
from jnskr.data.readers.common import dense_ids, parse_int_lines
from jnskr.data.readers.kgat import read_list_file
from jnskr.data.readers.kgfeat import read_kg_feat
from jnskr.data.split import holdout_split, leave_one_out_split, split_pairs, time_split
from jnskr.data.table import Column, read_table
from jnskr.errors import DataError

from conftest import DATA, shared_dataset, shared_dataset as shared

# ----------------------------------------------------------------------
# Readers: KGAT, RecBole atomic files, TSV/CSV, kg_feat.npz; quirks and error messages.

FIX = DATA


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("JNSKR_DATA", str(tmp_path / "jnskr-data"))


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, content in files.items():
        (folder / n).write_bytes(content.encode() if isinstance(content, str) else content)
    return folder


def rows(x, ids=None) -> list[list]:
    out = [x.row(u).tolist() for u in range(x.n_users)]
    return [[str(ids[i]) for i in r] for r in out] if ids is not None else out


def test_kgat_tiny_exact_arrays():
    ds = read_kgat(FIX / "kgat_tiny")
    assert (ds.n_users, ds.n_items) == (4, 6)
    assert ds.train.indptr.tolist() == [0, 3, 5, 6, 6]
    assert ds.train.indices.tolist() == [0, 1, 2, 2, 3, 4]
    assert ds.test.indptr.tolist() == [0, 1, 1, 1, 3]
    assert ds.test.indices.tolist() == [3, 0, 5]
    assert ds.train.indptr.dtype == np.int64 and ds.train.indices.dtype == np.int64
    kg = ds.kg
    assert kg.heads.tolist() == [0, 1, 2, 6]
    assert kg.relations.tolist() == [0, 0, 1, 1]
    assert kg.tails.tolist() == [6, 6, 7, 6]
    assert (kg.n_entities, kg.n_relations) == (8, 2)
    assert ds.user_ids.tolist() == ["alice", "bob", "carol", "dave"]
    assert ds.item_ids.tolist() == ["A0", "A1", "A2", "A3", "A4", "A5"]
    assert kg.entity_ids.tolist()[6:] == ['"Power Play"@en', ""]  # org id with spaces/quotes, empty org id
    assert kg.relation_names.tolist() == ["http://rdf.freebase.com/ns/film.genre", "http://rdf.freebase.com/ns/film.actor"]
    s = ds.stats
    assert s["duplicate_train_items"] == 1  # "0 0 1 1 2"
    assert s["kg_self_loops"] == 1
    assert s["users_without_train"] == 1  # user 3 only in test
    assert s["cold_test_items"] == 1  # item 5
    assert s["items_without_kg"] == 3  # items 3, 4, 5
    assert s["test_in_train"] == 0
    assert s["test_users"] == 2
    assert any("duplicate train items" in w for w in ds.warnings)
    assert ds.name == "kgat_tiny"


def test_kgat_quirks_crlf_tabs_empty_lines_and_duplicates(tmp_path):
    d = write(tmp_path / "q", {
        "train.txt": b"0 1 2 2 2\r\n\r\n1\t3  4 \r\n",
        "test.txt": b"0 3 3\n1 \n2\n\n",
    })
    ds = read_kgat(d)
    assert rows(ds.train) == [[1, 2], [3, 4], []]
    assert rows(ds.test) == [[3], [], []]
    assert ds.stats["duplicate_train_items"] == 2
    assert ds.stats["duplicate_test_items"] == 1
    assert ds.n_users == 3  # "2" alone on a test line still counts as a user
    assert ds.kg is None and any("no KG" in w for w in ds.warnings)


def test_kgat_user_on_two_lines_is_merged(tmp_path):
    d = write(tmp_path / "m", {"train.txt": "0 1\n0 2\n", "test.txt": "0 3\n"})
    assert rows(read_kgat(d).train) == [[1, 2]]


def test_kgat_gz_kg_and_lists_extend_counts(tmp_path):
    d = write(tmp_path / "g", {
        "train.txt": "0 0\n",
        "test.txt": "1 1\n",
        "kg_final.txt.gz": gzip.compress(b"0 2 5\n1 0 0\n"),
        "user_list.txt": "org_id remap_id\nu0 0\nu1 1\nu2 2\n",
        "item_list.txt": "org_id remap_id freebase_id\ni0 0 m.0\ni1 1 m.1\ni2 2 m.2\n",
        "relation_list.txt": "org_id remap_id\nr0 0\nr1 1\nr2 2\nr3 3\n",
    })
    ds = read_kgat(d)
    assert (ds.n_users, ds.n_items) == (3, 3)  # list files are larger than the max ids
    assert ds.kg.n_triples == 2 and ds.kg.n_entities == 6 and ds.kg.n_relations == 4
    assert ds.kg.entity_ids is None


def test_yelp_style_glued_item_list(tmp_path):
    p = tmp_path / "item_list.txt"
    p.write_text("org_id remap_id freebase_id\nydUq 0ydUq\n5abc 15abc\nzz 2 m.zz\n")
    ids, orgs = read_list_file(p)
    assert ids.tolist() == [0, 1, 2]
    assert orgs == ["ydUq", "5abc", "zz"]


def test_kgat_missing_train_names_the_file(tmp_path):
    d = write(tmp_path / "y", {"test.txt": "0 1\n"})
    with pytest.raises(DataError) as e:
        read_kgat(d)
    msg = str(e.value)
    assert msg.startswith(f"{d / 'train.txt'}: missing file: a KGAT folder needs train.txt")
    assert "test.txt" in msg and "\n" not in msg


@pytest.mark.parametrize(
    "content, problem, line",
    [
        (b"0 1 2\n1 x2 3\n", "non-integer token 'x2'", 2),
        (b"0 1\n1 2.5\n", "non-integer token '2.5'", 2),
        (b"0 1\n\n1 -3\n", "negative id -3", 3),
        (b"0 1\n1 1000000000\n", "id 1000000000 exceeds max_id=100000000", 2),
        (b"0 1\n1 99999999999999999999999\n", "id 99999999999999999999999 exceeds max_id=100000000", 2),
        (b"0 1\n\xff\xfe\xfd\n", "not UTF-8 text (binary file?)", 2),
        (b"0 1\n2 3\n4 \x00 5\n", "NUL byte: binary data, not text", 3),
    ],
)
def test_kgat_interaction_errors(tmp_path, content, problem, line):
    d = write(tmp_path / "e", {"train.txt": content, "test.txt": "0 1\n"})
    with pytest.raises(DataError) as e:
        read_kgat(d)
    assert str(e.value) == f"{d / 'train.txt'}:{line}: {problem}"
    assert e.value.line == line


def test_max_id_is_checked_before_allocation(tmp_path):
    d = write(tmp_path / "big", {"train.txt": "0 5\n", "test.txt": "50 1\n"})
    with pytest.raises(DataError, match=r"test.txt:1: id 50 exceeds max_id=10$"):
        read_kgat(d, max_id=10)


def test_kgat_empty_file(tmp_path):
    d = write(tmp_path / "em", {"train.txt": "", "test.txt": "0 1\n"})
    with pytest.raises(DataError) as e:
        read_kgat(d)
    assert str(e.value) == f"{d / 'train.txt'}: empty file"


@pytest.mark.parametrize(
    "kg, problem, line",
    [
        ("0 0 1\n0 1\n", "expected 3 fields (head relation tail), got 2", 2),
        ("0 0 1\n\n0 1 2 3\n", "expected 3 fields (head relation tail), got 4", 3),
        ("0 r 1\n", "non-integer token 'r'", 1),
    ],
)
def test_kgat_kg_errors(tmp_path, kg, problem, line):
    d = write(tmp_path / "k", {"train.txt": "0 0\n", "test.txt": "0 1\n", "kg_final.txt": kg})
    with pytest.raises(DataError) as e:
        read_kgat(d)
    assert str(e.value) == f"{d / 'kg_final.txt'}:{line}: {problem}"


def test_list_file_bad_remap_id(tmp_path):
    d = write(tmp_path / "l", {"train.txt": "0 0\n", "test.txt": "0 1\n", "user_list.txt": "org_id remap_id\na 0\nb one\n"})
    with pytest.raises(DataError) as e:
        read_kgat(d)
    assert str(e.value) == f"{d / 'user_list.txt'}:3: remap id 'one' is not a non-negative integer"


def test_parse_int_lines_vectorised_matches_python():
    rng = np.random.default_rng(0)
    lines = [" ".join(map(str, rng.integers(0, 10**8, rng.integers(1, 20)))) for _ in range(300)]
    raw = ("\n".join(lines) + "\n").encode()
    toks = parse_int_lines(raw, "x")
    expect = [int(t) for ln in lines for t in ln.split()]
    assert toks.values.tolist() == expect
    assert toks.lines[toks.first].tolist() == list(range(1, 301))


def _save_csr(path: Path, dense: np.ndarray) -> None:
    sp = pytest.importorskip("scipy.sparse")
    sp.save_npz(path, sp.csr_matrix(dense))


def test_kg_feat_identity_and_self_links(tmp_path):
    m = np.zeros((3, 6))
    m[0, 0], m[0, 3], m[0, 4] = 1, 2, 1  # identity; (0,3) under 2 relations; (0,4)
    m[1, 1], m[1, 3] = 3, 1  # identity + 2 self-links; (1,3)
    m[2, 2] = 1  # identity only: no facts
    d = write(tmp_path / "f", {"train.txt": "0 0 1\n1 2\n", "test.txt": "0 2\n"})
    _save_csr(d / "kg_feat.npz", m)
    ds = read_kgat(d)
    kg = ds.kg
    assert kg.heads.tolist() == [0, 0, 1, 1]
    assert kg.tails.tolist() == [3, 4, 1, 3]
    assert kg.relations.tolist() == [0, 0, 0, 0]
    assert kg.relation_names.tolist() == ["linked"]
    assert (kg.n_entities, kg.n_relations) == (6, 1)
    s = ds.stats
    assert s["kg_feat_identity"] == 3
    assert s["kg_feat_self_links"] == 2
    assert s["kg_feat_facts"] == 6  # 2 + 1 + 2 + 1
    assert s["kg_feat_multi_links"] == 2
    assert s["kg_self_loops"] == 1
    assert s["items_without_kg"] == 1  # item 2
    assert any("kg_feat.npz" in w for w in ds.warnings)


def test_kg_feat_read_without_scipy_matches_scipy(tmp_path):
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(1)
    m = sp.random(20, 50, density=0.1, random_state=2, format="csr")
    m.data = rng.integers(1, 4, len(m.data)).astype(float)
    m = m + sp.eye(20, 50, format="csr")
    sp.save_npz(tmp_path / "kg_feat.npz", m.tocsr())
    kg, stats, n_rows = read_kg_feat(tmp_path / "kg_feat.npz", 20)
    coo = m.tocoo()
    facts = np.where(coo.row == coo.col, coo.data - 1, coo.data)
    assert n_rows == 20 and kg.n_entities == 50
    assert kg.n_triples == int(np.count_nonzero(facts > 0))
    assert stats["kg_feat_facts"] == int(facts.sum())
    got = set(zip(kg.heads.tolist(), kg.tails.tolist()))
    assert got == {(r, c) for r, c, f in zip(coo.row.tolist(), coo.col.tolist(), facts) if f > 0}


def test_kg_feat_not_an_npz(tmp_path):
    d = write(tmp_path / "bad", {"train.txt": "0 0\n", "test.txt": "0 1\n", "kg_feat.npz": b"junk"})
    with pytest.raises(DataError, match=r"kg_feat.npz: not a scipy CSR .npz file"):
        read_kgat(d)


def test_recbole_tiny_full():
    ds = read_recbole(FIX / "recbole_tiny")
    assert ds.user_ids.tolist() == ["2", "3", "10"]  # numeric order of raw ids
    assert ds.item_ids.tolist() == ["100", "101", "102", "103", "104", "105", "106"]
    assert ds.name == "recbole_tiny"
    # per-user split: round(0.2 n) clamped to 1..n-1; single-item users keep it in train
    assert ds.test.user_counts().tolist() == [1, 0, 1]
    assert ds.train.user_counts().tolist() == [2, 1, 4]
    assert ds.train.row(1).tolist() == [6]
    for u in range(3):
        both = sorted(ds.train.row(u).tolist() + ds.test.row(u).tolist())
        assert both == sorted(set(both))
    kg = ds.kg
    assert kg.entity_ids.tolist() == ["m.a", "m.b", "m.c", "m.d", "m.zz", "m.e", "", "m.x", "m.y"]
    assert kg.relation_names.tolist() == ["film.actor", "film.genre"]
    assert list(zip(kg.heads.tolist(), kg.relations.tolist(), kg.tails.tolist())) == [(0, 1, 7), (1, 0, 8), (2, 1, 7), (5, 0, 0)]
    assert ds.item_names.tolist() == ["Toy Story", "GoldenEye", "Four Rooms", "", "", "Heat", ""]


def test_recbole_split_is_seeded():
    a, b = read_recbole(FIX / "recbole_tiny", seed=1), read_recbole(FIX / "recbole_tiny", seed=1)
    assert a.fingerprint() == b.fingerprint()


def test_recbole_link_only():
    ds = read_recbole(FIX / "recbole_tiny", link_only=True)
    assert ds.user_ids.tolist() == ["2", "10"]
    assert ds.item_ids.tolist() == ["100", "101", "102", "105"]
    kg = ds.kg
    assert kg.entity_ids.tolist() == ["m.a", "m.b", "m.c", "m.e", "m.x", "m.y"]
    assert list(zip(kg.heads.tolist(), kg.relations.tolist(), kg.tails.tolist())) == [(0, 1, 4), (1, 0, 5), (2, 1, 4), (3, 0, 0)]
    assert ds.train.nnz + ds.test.nnz == 6
    assert any("link_only" in w for w in ds.warnings)


def test_recbole_benchmark_files_merge_valid(tmp_path):
    h = "user_id:token\titem_id:token\n"
    d = write(tmp_path / "bm", {
        "bm.train.inter": h + "a\tx\na\ty\n",
        "bm.valid.inter": h + "a\tz\n",
        "bm.test.inter": h + "a\tw\nb\tx\n",
    })
    ds = read_recbole(d)
    assert ds.item_ids.tolist() == ["w", "x", "y", "z"]
    assert rows(ds.train) == [[1, 2, 3], []]
    assert rows(ds.test) == [[0], [1]]
    assert ds.kg is None


def test_recbole_without_link_matches_entities_by_item_id_when_told(tmp_path):
    d = write(tmp_path / "nl", {
        "nl.inter": "user_id:token\titem_id:token\nu\ti1\nu\ti2\n",
        "nl.kg": "head_id:token\trelation_id:token\ttail_id:token\ni1\tr\te9\ne9\tr\ti2\n",
    })
    with pytest.raises(DataError) as e:  # RecBole itself needs the .link file
        read_recbole(d)
    assert str(e.value).startswith(f"{d / 'nl.kg'}: a KG reaches the items only through nl.link")
    kg = read_recbole(d, kg_ids="items").kg
    assert kg.entity_ids.tolist() == ["i1", "i2", "e9"]
    assert kg.heads.tolist() == [0, 2] and kg.tails.tolist() == [2, 1]


@pytest.mark.parametrize(
    "header, problem",
    [
        ("user_id:float\titem_id:token", "column user_id has type float, expected token"),
        ("user_id:token\trating:float", "missing column item_id:token (header has user_id:token, rating:float)"),
        ("user_id:int\titem_id:token", "header field 'user_id:int': unknown type 'int' (expected one of token, token_seq, float, float_seq)"),
        ("user_id\titem_id:token", "header field 'user_id' is not name:type"),
    ],
)
def test_recbole_header_errors(tmp_path, header, problem):
    d = write(tmp_path / "h", {"h.inter": header + "\n1\t2\n"})
    with pytest.raises(DataError) as e:
        read_recbole(d)
    assert str(e.value) == f"{d / 'h.inter'}:1: {problem}"


def test_recbole_row_errors(tmp_path):
    d = write(tmp_path / "r", {"r.inter": "user_id:token\titem_id:token\n1\t2\n1\t3\t4\n"})
    with pytest.raises(DataError) as e:
        read_recbole(d)
    assert str(e.value) == f"{d / 'r.inter'}:3: expected 2 fields, got 3"
    d = write(tmp_path / "r2", {"r2.inter": "user_id:token\titem_id:token\n1\t2\n\t3\n"})
    with pytest.raises(DataError, match=r"r2.inter:3: empty user_id \(field 1\)$"):
        read_recbole(d)
    d = write(tmp_path / "r3", {"r3.inter": "user_id:token\titem_id:token\n1\t2\n", "r3.kg": "head_id:token\ttail_id:token\n"})
    with pytest.raises(DataError, match=r"r3.kg:1: missing column relation_id:token"):
        read_recbole(d)


def test_recbole_link_only_needs_kg(tmp_path):
    d = write(tmp_path / "lo", {"lo.inter": "user_id:token\titem_id:token\n1\t2\n"})
    with pytest.raises(DataError, match="link_only needs lo.kg and lo.link"):
        read_recbole(d, link_only=True)


def test_tsv_tiny_folder():
    ds = read_tsv(FIX / "tsv_tiny", kg_ids="items")
    assert ds.user_ids.tolist() == ["u1", "u2", "u3"]
    assert ds.item_ids.tolist() == ["a", "b", "c", "d"]
    assert ds.train.indptr.tolist() == [0, 2, 3, 3] and ds.train.indices.tolist() == [0, 1, 2]
    assert ds.test.indptr.tolist() == [0, 0, 1, 2] and ds.test.indices.tolist() == [0, 3]
    assert ds.stats["duplicate_train_items"] == 1
    kg = ds.kg
    assert kg.entity_ids.tolist() == ["a", "b", "c", "d", "jazz", "music"]
    assert kg.relation_names.tolist() == ["genre", "parent", "similar"]
    assert list(zip(kg.heads.tolist(), kg.relations.tolist(), kg.tails.tolist())) == [(0, 0, 4), (1, 2, 0), (4, 1, 5)]
    assert ds.stats["users_without_train"] == 1 and ds.stats["cold_test_items"] == 1


def test_tsv_single_file_split_and_numeric_ids(tmp_path):
    p = tmp_path / "ratings.tsv"
    lines = [f"{u}\t{i}\t1\t0" for u in (1, 2, 10) for i in range(1, 11)]
    p.write_text("\n".join(lines) + "\n")
    ds = read_tsv(p)
    assert ds.user_ids.tolist() == ["1", "2", "10"]
    assert ds.item_ids.tolist() == [str(i) for i in range(1, 11)]
    assert ds.test.user_counts().tolist() == [2, 2, 2]
    assert ds.train.nnz == 24
    assert ds.name == "ratings"


def test_tsv_header_by_name_and_whitespace(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("timestamp,item_id,user_id\n5,i1,u1\n6,i2,u1\n")
    ds = read_tsv(p)
    assert ds.user_ids.tolist() == ["u1"] and ds.item_ids.tolist() == ["i1", "i2"]
    p2 = tmp_path / "y.txt"
    p2.write_text("u1 i1\nu1 i2\nu2 i1\n")
    assert read_tsv(p2).n_users == 2


def test_tsv_errors(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("user,item\nu1,i1\nu2\n")
    with pytest.raises(DataError) as e:
        read_tsv(p)
    assert str(e.value) == f"{p}:3: expected 2 fields, got 1"
    with pytest.raises(DataError, match="interactions.tsv: missing file"):
        read_tsv(tmp_path)


def test_detect_format(tmp_path):
    assert detect_format(FIX / "kgat_tiny") == "kgat"
    assert detect_format(FIX / "recbole_tiny") == "recbole"
    assert detect_format(FIX / "recbole_tiny" / "recbole_tiny.inter") == "recbole"
    assert detect_format(FIX / "tsv_tiny") == "tsv"
    assert detect_format(FIX / "tsv_tiny" / "interactions.csv") == "tsv"
    only_test = write(tmp_path / "yelp", {"test.txt": "0 1\n"})
    assert detect_format(only_test) == "kgat"
    with pytest.raises(DataError, match="cannot detect the format"):
        detect_format(write(tmp_path / "other", {"readme.md": "x"}))
    with pytest.raises(DataError, match="missing file or folder"):
        detect_format(tmp_path / "nope")


def test_dense_ids_numeric_then_lexicographic():
    uniq, codes = dense_ids(np.array(["10", "9", "10", "100"]))
    assert uniq.tolist() == ["9", "10", "100"] and codes.tolist() == [1, 0, 1, 2]
    uniq, codes = dense_ids(np.array(["b", "a10", "a9"]))
    assert uniq.tolist() == ["a10", "a9", "b"] and codes.tolist() == [2, 0, 1]


def test_kgcn_music_via_kgat_reader():
    ds = read_kgat(shared("kgcn-music"))
    assert (ds.n_users, ds.n_items) == (1872, 3846)
    assert (ds.train.nnz, ds.test.nnz) == (17700, 3473)
    assert (ds.kg.n_triples, ds.kg.n_relations, ds.kg.n_entities) == (15518, 60, 9366)
    assert ds.stats["kg_self_loops"] == 49
    assert ds.stats["cold_test_items"] == 328
    assert ds.stats["test_users"] == 1815


def test_ml100k_kgat():
    ds = read_kgat(shared("ml100k-kgat"))
    assert (ds.n_users, ds.n_items) == (943, 1598)
    assert ds.train.nnz + ds.test.nnz == 97554
    assert ds.kg.n_triples == 91631 and ds.kg.n_relations == 24
    assert ds.item_ids[0] == "1" and ds.user_ids[942] == "943"


def test_amazon_book_interactions_and_kg_feat():
    t = time.perf_counter()
    ds = read_kgat(shared("amazon-book"))
    elapsed = time.perf_counter() - t
    assert (ds.n_users, ds.n_items) == (70679, 24915)
    assert (ds.train.nnz, ds.test.nnz) == (652514, 193920)
    assert ds.stats["test_users"] == 70679 - 88
    assert ds.kg.n_entities == 113487 and ds.kg.n_relations == 1
    assert ds.kg.n_triples == 302200 - 24915 + 4  # off-diagonal links + 4 self-links
    assert ds.stats["kg_feat_facts"] - ds.stats["kg_feat_self_links"] == 465183
    assert ds.stats["kg_self_loops"] == 4
    assert ds.stats["test_in_train"] == 0 and ds.stats["cold_test_items"] == 0
    assert ds.kg.entity_ids[30181] == ""  # the entity with an empty org id
    assert elapsed < 10


@pytest.mark.parametrize("name", ["yelp2018", "last-fm"])
def test_incomplete_kgat_sets_name_missing_train(name):
    d = shared(name)
    with pytest.raises(DataError) as e:
        read_kgat(d)
    assert str(e.value).startswith(f"{d / 'train.txt'}: missing file: a KGAT folder needs train.txt")


def test_last_fm_test_duplicates_and_yelp_item_list():
    d = shared("last-fm")
    from jnskr.data.readers.kgat import read_interaction_lines

    u, i, _ = read_interaction_lines(d / "test.txt")
    assert len(i) == 616336
    assert len(np.unique(u * 50000 + i)) == 423635
    ids, orgs = read_list_file(shared("yelp2018") / "item_list.txt")
    assert len(ids) == 45538 and ids.tolist() == list(range(45538))
    assert orgs[0] == "ydUqgWsF3F27TbauOyib0w"


# ----------------------------------------------------------------------
# Delimited data with links, names, configurable files, columns and separators; weights as a

pytestmark = pytest.mark.filterwarnings("error")


LASTFM = {  # the shape of the HetRec-2011 originals: header, tabs, CRLF in the KG files
    "user_artists.dat": "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n2\t53\t9\n3\t51\t20\n3\t54\t7\n",
    "item_index2entity_id.txt": "51\t0\r\n52\t1\r\n54\t2\r\n",
    "kg.txt": "0\tmusic.artist.origin\t100\r\n1\tmusic.artist.genre\t101\r\n2\tmusic.artist.origin\t100\r\n",
}


LASTFM_OPTS = dict(files={"interactions": "user_artists.dat", "links": "item_index2entity_id.txt", "kg": "kg.txt"},
                   columns={"user": "userID", "item": "artistID", "weight": "weight"})


def test_lastfm_shaped_folder_reads_through_the_links_file(tmp_path):
    d = write(tmp_path / "lfm", LASTFM)
    ds = read_tsv(d, **LASTFM_OPTS)
    assert ds.item_ids.tolist() == ["51", "52", "53", "54"] and ds.user_ids.tolist() == ["2", "3"]
    kg = ds.kg
    # items 51, 52, 54 are entities 0, 1, 3 (dense item ids); the KG's "0", "1", "2" are those items
    assert kg.heads.tolist() == [0, 1, 3]
    assert kg.entity_ids[:4].tolist() == ["0", "1", "", "2"] and kg.entity_ids[4:].tolist() == ["100", "101"]
    assert ds.stats["items_with_kg"] == 3 and ds.stats["kg_heads_items"] == 3 and ds.stats["kg_heads"] == 3
    assert ds.provenance["kg_ids"] == "links" and ds.provenance["format"] == "tsv"
    assert ds.provenance["files"] == {"interactions": "user_artists.dat", "kg": "kg.txt",
                                      "links": "item_index2entity_id.txt"}
    assert any("column 'weight'" in w and "ignored" in w for w in ds.warnings)
    assert not any("file not read" in w for w in ds.warnings)


def test_kg_without_links_is_refused_naming_kg_and_links(tmp_path):
    """The Last.fm mistake: kg.txt copied to kg.tsv joined entity ids to artist ids by equal
    numbers.  Now a KG reaches items only through links or a stated kg_ids: items."""
    d = write(tmp_path / "x", {"interactions.tsv": LASTFM["user_artists.dat"], "kg.tsv": LASTFM["kg.txt"]})
    with pytest.raises(DataError) as e:
        read_tsv(d)
    msg = str(e.value)
    assert msg.startswith(f"{d / 'kg.tsv'}: a KG reaches the items only through a links file")
    assert str(d / "links.tsv") in msg and "kg_ids: items" in msg and "\n" not in msg
    ds = read_tsv(d, kg_ids="items")  # stated: KG head ids are item ids
    assert ds.provenance["kg_ids"] == "items"
    with pytest.raises(DataError, match="exclude each other"):
        read_tsv(write(tmp_path / "y", {**LASTFM, "links.tsv": "51\t0\n"}), kg_ids="items",
                 files={"interactions": "user_artists.dat", "kg": "kg.txt"})


def test_unread_files_are_named(tmp_path):
    d = write(tmp_path / "u", {**LASTFM, "README.md": "hello\n"})
    ds = read_tsv(d, **LASTFM_OPTS)
    assert [w for w in ds.warnings if w.startswith("file not read")] == [
        "file not read: README.md (not a file of this format; see docs/data.md)"]
    d2 = write(tmp_path / "k", {"train.txt": "0 1\n", "notes.txt": "x\n"})
    from jnskr.data import read_kgat

    assert any(w.startswith("file not read: notes.txt") for w in read_kgat(d2).warnings)


def test_names_file_and_default_file_names(tmp_path):
    d = write(tmp_path / "n", {
        "interactions.csv": "user,item\nu1,i1\nu1,i2\nu2,i1\n",
        "kg.csv": "head,relation,tail\ne1,genre,jazz\n",
        "links.csv": "item,entity\ni1,e1\n",
        "names.csv": 'item,name\ni1,"Blue, Kind of"\ni2,Giant Steps\n',
    })
    ds = read_tsv(d)
    assert ds.item_names.tolist() == ["Blue, Kind of", "Giant Steps"]  # RFC 4180: the comma stays
    assert ds.kg.heads.tolist() == [0]


def test_links_file_errors(tmp_path):
    d = write(tmp_path / "l", {"interactions.tsv": "u\ti1\nu\ti2\n", "kg.tsv": "e1\tr\te2\n",
                               "links.tsv": "i1\te1\ni1\te2\n"})
    with pytest.raises(DataError, match=r"links.tsv:2: item 'i1' is linked to two entities"):
        read_tsv(d)
    with pytest.raises(DataError, match=r"missing file \(named as the links file\)"):
        read_tsv(d, files={"links": "nope.tsv"})
    d2 = write(tmp_path / "l2", {"interactions.tsv": "u\ti1\n", "links.tsv": "i1\te1\n"})
    with pytest.raises(DataError, match="a links file without a KG file"):
        read_tsv(d2)


def test_columns_by_name_and_position_and_separators(tmp_path):
    d = write(tmp_path / "c", {"r.dat": "1::10::5::100\n1::11::3::90\n2::10::4::80\n"})
    ds = read_tsv(d / "r.dat", separator="::", columns={"user": 1, "item": 2})
    assert ds.user_ids.tolist() == ["1", "2"] and ds.item_ids.tolist() == ["10", "11"]
    assert any("columns of r.dat not read: column 3, column 4" in w for w in ds.warnings)
    d2 = write(tmp_path / "s", {"x.csv": "a;b;user\n1;i1;u1\n2;i2;u1\n"})
    ds2 = read_tsv(d2 / "x.csv", separator="semicolon", columns={"item": "b"})
    assert ds2.user_ids.tolist() == ["u1"] and ds2.item_ids.tolist() == ["i1", "i2"]
    with pytest.raises(DataError, match=r"x.csv:1: no column 'nope' \(item\) in the header \(columns: a, b, user\)"):
        read_tsv(d2 / "x.csv", separator="semicolon", columns={"item": "nope"})
    d3 = write(tmp_path / "h", {"x.tsv": "u1\ti1\n"})
    with pytest.raises(DataError, match=r"x.tsv:1: no header line, so no column 'userID'"):
        read_tsv(d3 / "x.tsv", columns={"user": "userID"})


def test_quoted_csv_field_with_comma_is_one_field(tmp_path):
    d = write(tmp_path / "q", {"x.csv": 'user,item\nu1,"Bach, J.S."\nu1,"say ""hi"""\nu2,plain\n'})
    ds = read_tsv(d / "x.csv")
    assert ds.item_ids.tolist() == ["Bach, J.S.", "plain", 'say "hi"']


def test_unicode_digit_ids_are_labels_in_tsv_and_recbole(tmp_path):
    d = write(tmp_path / "t", {"x.tsv": "u²\t²\nu²\t3\nu1\t²\n"})
    ds = read_tsv(d / "x.tsv")  # "²" passes str.isdigit but is no decimal id: a string label
    assert sorted(ds.item_ids.tolist()) == ["3", "²"]
    r = write(tmp_path / "rb", {"rb.inter": "user_id:token\titem_id:token\n²\t1\n²\t2\n1\t²\n"})
    assert sorted(read_recbole(r).user_ids.tolist()) == ["1", "²"]


def test_weight_threshold_keeps_rows_at_or_above(tmp_path):
    d = write(tmp_path / "w", LASTFM)
    ds = read_tsv(d, **LASTFM_OPTS, weight="threshold", weight_threshold=10, split="ratio")
    assert set(ds.item_ids.tolist()) == {"51", "52"}  # 53 (9) and 54 (7) are below 10
    assert ds.train.values is None and ds.provenance["weight"] == {
        "use": "threshold", "column": "weight", "threshold": 10.0, "dropped": 2}


def test_weight_confidence_carries_values_through_split_cache_import(tmp_path):
    d = write(tmp_path / "w", LASTFM)
    ds = read_tsv(d, **LASTFM_OPTS, weight="confidence", confidence_norm="none")  # values as given
    got = {}
    for part in (ds.train, ds.test):
        for u in range(part.n_users):
            for i, v in zip(part.row(u), part.row_values(u)):
                got[(ds.user_ids[u], ds.item_ids[i])] = v
    assert got == {("2", "51"): 13883, ("2", "52"): 11690, ("2", "53"): 9, ("3", "51"): 20, ("3", "54"): 7}
    save_dataset(ds, tmp_path / "c.npz")
    back = load_saved(tmp_path / "c.npz")
    assert np.array_equal(back.train.values, ds.train.values) and back.provenance == ds.provenance
    assert back.fingerprint() == ds.fingerprint()
    a, b = holdout_split(ds.train, 0.5, 0)
    assert sorted(np.concatenate([a.values, b.values]).tolist()) == sorted(ds.train.values.tolist())
    t = ds.train.transpose()
    assert sorted(t.values.tolist()) == sorted(ds.train.values.tolist())
    from jnskr.data import registry

    imported = registry.import_dataset(d, "tsv", "lfm", **LASTFM_OPTS, weight="confidence")
    again = load_dataset("lfm")
    assert np.array_equal(again.train.values, imported.train.values)


def test_negative_confidence_and_bad_weights_name_the_line(tmp_path):
    d = write(tmp_path / "n", {"x.tsv": "user\titem\tweight\nu\ti\t1\nu\tj\t-2\n"})
    with pytest.raises(DataError, match=r"x.tsv:3: negative weight -2"):
        read_tsv(d / "x.tsv", weight="confidence")
    d2 = write(tmp_path / "b", {"x.tsv": "user\titem\tweight\nu\ti\t1\nu\tj\tlots\n"})
    with pytest.raises(DataError, match=r"x.tsv:3: weight \(weight\) 'lots' is not a finite number"):
        read_tsv(d2 / "x.tsv", weight="threshold", weight_threshold=1)
    assert read_tsv(d2 / "x.tsv").n_items == 2  # ignored weights are not parsed
    with pytest.raises(DataError, match="needs a weight column"):
        read_tsv(write(tmp_path / "c", {"x.tsv": "u\ti\n"}) / "x.tsv", weight="confidence")


def test_from_pairs_sums_duplicate_values():
    x = Interactions.from_pairs(np.array([0, 0, 1, 0]), np.array([2, 1, 0, 2]), 2, 3, np.array([1.0, 2.0, 3.0, 4.0]))
    assert x.indices.tolist() == [1, 2, 0] and x.values.tolist() == [2.0, 5.0, 3.0]


def _full(n_users=30, n_items=40, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, n_users, 500)
    i = rng.integers(0, n_items, 500)
    return u, i, rng.random(500) * 1000


def test_leave_one_out_and_time_splits():
    u, i, t = _full()
    tr, te, info = split_pairs(u, i, 30, 40, method="leave_one_out", seed=3)
    full = Interactions.from_pairs(u, i, 30, 40)
    assert info == {"method": "leave_one_out", "order": "random", "seed": 3}
    assert te.user_counts().tolist() == [1 if n >= 2 else 0 for n in full.user_counts()]
    tr2, te2, info2 = split_pairs(u, i, 30, 40, method="leave_one_out", seed=3, times=t)
    assert info2["order"] == "time"
    from jnskr.data.split import pair_times

    pt = pair_times(u, i, 40, t)
    for x in range(30):  # the held-out item is each user's latest
        a, b = full.indptr[x], full.indptr[x + 1]
        if b - a >= 2:
            latest = full.indices[a + int(np.argmax(pt[a:b]))]
            assert te2.row(x).tolist() == [latest]
    tr3, te3, info3 = split_pairs(u, i, 30, 40, method="time", test_ratio=0.25, times=t)
    from jnskr.data.split import n_test_items

    for x in range(30):
        a, b = full.indptr[x], full.indptr[x + 1]
        k = n_test_items(b - a, 0.25)
        assert len(te3.row(x)) == k
        if k:
            assert pt[a:b][np.isin(full.indices[a:b], te3.row(x))].min() >= pt[a:b][
                np.isin(full.indices[a:b], tr3.row(x))].max()
    with pytest.raises(ValueError, match="needs timestamps"):
        split_pairs(u, i, 30, 40, method="time")
    assert leave_one_out_split(full, 1)[1].nnz == te.nnz and time_split(full, pt)[1].nnz > 0


def test_split_options_through_the_reader(tmp_path):
    lines = ["user,item,timestamp"] + [f"u{k % 3},i{k},{k}" for k in range(30)]
    d = write(tmp_path / "t", {"x.csv": "\n".join(lines) + "\n"})
    ds = read_tsv(d / "x.csv", split="time", test_ratio=0.2)
    assert ds.provenance["split"] == {"method": "time", "test_ratio": 0.2, "seed": 2020}
    for u in range(3):  # the latest 2 of each user's 10 items
        assert sorted(int(ds.item_ids[i][1:]) for i in ds.test.row(u)) == [24 + u, 27 + u]
    loo = read_tsv(d / "x.csv", split="leave_one_out")
    assert loo.test.user_counts().tolist() == [1, 1, 1] and loo.provenance["split"]["order"] == "time"
    with pytest.raises(DataError, match="split: time needs a timestamp column"):
        read_tsv(write(tmp_path / "n", {"y.csv": "user,item\na,b\na,c\n"}) / "y.csv", split="time")
    iso = write(tmp_path / "iso", {"z.csv": "user,item,time\na,x,2020-01-02\na,y,2020-01-01T10:00\na,z,2019-12-31\n"})
    assert read_tsv(iso / "z.csv", split="leave_one_out").item_ids[
        read_tsv(iso / "z.csv", split="leave_one_out").test.row(0)].tolist() == ["x"]


def test_kgat_and_given_test_record_the_split(tmp_path):
    from jnskr.data import read_kgat

    ds = read_kgat(DATA / "kgat_tiny")
    assert ds.provenance["split"] == {"method": "given"} and ds.provenance["kg_ids"] == "kgat"


def test_data_config_keys_are_strict_and_reach_the_reader(tmp_path):
    cfg = DataConfig(files={"interactions": "user_artists.dat", "links": "item_index2entity_id.txt", "kg": "kg.txt"},
                     columns={"user": "userID", "item": 2}, weight="confidence", split="leave_one_out",
                     test_seed=7, max_memory_gb=4)
    opts = cfg.reader_options()
    assert opts == {"files": {"interactions": "user_artists.dat", "kg": "kg.txt", "links": "item_index2entity_id.txt"},
                    "columns": {"user": "userID", "item": 2}, "weight": "confidence", "split": "leave_one_out",
                    "seed": 7, "max_memory": 4e9}
    assert DataConfig().reader_options() == {}
    from pydantic import ValidationError

    for bad in ({"weight": "threshold"}, {"test_ratio": 1.0}, {"columns": {"user": 0}}, {"separator": "ab"},
                {"kg_ids": "maybe"}, {"files": {"kgg": "x"}}, {"weight_threshold": float("nan"), "weight": "threshold"},
                {"max_memory_gb": 0}):
        with pytest.raises(ValidationError):
            DataConfig(**bad)
    d = write(tmp_path / "lfm", LASTFM)
    ds = load_dataset(d, **opts)
    assert ds.provenance["split"]["method"] == "leave_one_out" and ds.train.values is not None
    with pytest.raises(DataError, match="option columns does not apply to the kgat format"):
        load_dataset(DATA / "kgat_tiny", columns={"user": 1})


@pytest.mark.slow
def test_lastfm_originals_reproduce_kgcn_music_sizes():
    orig = shared_dataset("kgcn-music") / "original"
    ds = read_tsv(orig, files={"interactions": "user_artists.dat", "links": "item_index2entity_id.txt",
                               "kg": "kg.txt"}, columns={"user": "userID", "item": "artistID"}, link_only=True)
    ref = load_dataset(orig.parent, cache=False)
    assert (ds.n_users, ds.n_items) == (ref.n_users, ref.n_items) == (1872, 3846)
    assert ds.train.nnz + ds.test.nnz == ref.train.nnz + ref.test.nnz == 21173
    assert (ds.kg.n_triples, ds.kg.n_entities, ds.kg.n_relations) == (15518, 9366, 60)
    assert ds.stats["items_with_kg"] == 3846 and ds.stats["kg_heads_items"] == ds.stats["kg_heads"] == 3846
    full = read_tsv(orig, files={"interactions": "user_artists.dat", "links": "item_index2entity_id.txt",
                                 "kg": "kg.txt"})
    assert full.n_items == 17632 and full.stats["items_with_kg"] == 3846


def test_load_configured_and_options_on_an_imported_name(tmp_path):
    from jnskr.data import load_configured, registry

    d = write(tmp_path / "lfm", LASTFM)
    cfg = DataConfig(dataset=None, path=str(d), files=LASTFM_OPTS["files"], columns=LASTFM_OPTS["columns"],
                     weight="confidence")
    ds = load_configured(cfg)
    assert ds.train.values is not None and ds.provenance["kg_ids"] == "links"
    registry.import_dataset(d, "tsv", "lfm2", **LASTFM_OPTS)
    assert load_configured(DataConfig(dataset="lfm2")).n_items == 4
    with pytest.raises(DataError, match="lfm2 is an imported dataset, read already: options \\(weight\\)"):
        load_dataset("lfm2", weight="confidence")


# ----------------------------------------------------------------------
# Headers of unknown names and empty splits (issue 21 item 4): a file `customer product qty` has a

FAST = ["--set", "train.epochs=1", "--set", "jnskr.embed_dim=4", "--set", "eval.ks=[1]", "--device", "cpu"]


@pytest.fixture(autouse=True)
def _data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("JNSKR_DATA", str(tmp_path / "jnskr-data"))
    monkeypatch.setenv("COLUMNS", "200")


def _rows(n_users=6, per_user=4, sep=" ") -> str:
    return "".join(f"{u}{sep}{100 + (u + k) % 9}{sep}{k + 1}\n" for u in range(n_users) for k in range(per_user))


def test_customer_product_qty_is_a_header_by_name(tmp_path):
    f = tmp_path / "orders.csv"
    f.write_text("customer,product,qty\n" + _rows(sep=","))
    ds = read_tsv(f)
    assert "customer" not in ds.user_ids.tolist() and "product" not in ds.item_ids.tolist()
    assert ds.n_users == 6 and ds.train.nnz + ds.test.nnz == 24
    assert any("column 'qty'" in w and "ignored" in w for w in ds.warnings)  # found as the weight


def test_unknown_names_above_numbers_are_a_header_by_type(tmp_path):
    f = tmp_path / "log.tsv"
    f.write_text("buyer\tthing\tn\n" + _rows(sep="\t"))
    ds = read_tsv(f)
    assert "buyer" not in ds.user_ids.tolist() and ds.n_users == 6
    assert any("log.tsv: line 1 read as a header (buyer, thing, n)" in w for w in ds.warnings)


@pytest.mark.parametrize("first", ["u1 i1 5", "nan 3 1", "x7 y 2"])  # ids with digits, numbers
def test_a_first_row_of_data_stays_data(tmp_path, first):
    f = tmp_path / "t.txt"
    f.write_text(first + "\n" + "".join(f"{k} {k + 1} 1\n" for k in range(5)))
    t = read_table(f, [Column("user", None, (), 1), Column("item", None, (), 2)])
    assert t.header is None and t.header_note is None and len(t) == 6


def test_one_item_per_user_is_refused_with_one_line(tmp_path, capsys):
    f = tmp_path / "likes.tsv"
    f.write_text("user\titem\n" + "".join(f"u{u}\ti{u % 5}\n" for u in range(20)))
    with pytest.raises(DataError, match="the ratio split leaves the test set empty: no user has 2 or more items"):
        read_tsv(f)
    assert run(["data", "validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "test set empty" in err and "Traceback" not in err


def test_an_empty_validation_split_is_refused_with_one_line(tmp_path, capsys):
    f = tmp_path / "pairs.tsv"  # two items a user: one to test, one left in train, none to validate on
    f.write_text("user\titem\n" + "".join(f"u{u}\ti{(u + k) % 7}\n" for u in range(20) for k in range(2)))
    assert run(["train", "--data", str(f), "--out", str(tmp_path / "run"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "the validation split is empty" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
