"""Headers of unknown names and empty splits (issue 21 item 4): a file `customer product qty` has a
header, not a user named "customer"; a split that leaves the test or validation set empty is one
`error:` line, exit 2."""

from __future__ import annotations

import pytest

from jnskr.cli.main import run
from jnskr.data.readers.tsv import read_tsv
from jnskr.data.table import Column, read_table
from jnskr.errors import DataError

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
