"""Property-based fuzzing of the readers: any input either loads into a valid `Dataset` or raises
a one-line `DataError` that names a file of the input (and a line of it, where it gives one).
Any other exception, and any warning (they are errors here), is a reader bug; the bugs found
this way are pinned as regression tests at the end of this file."""

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jnskr.data.dataset import Dataset
from jnskr.data.readers import detect_format, read_kgat, read_recbole, read_tsv
from jnskr.data.readers.common import parse_int_lines, read_bytes
from jnskr.data.validate import validate_dataset
from jnskr.errors import DataError

#: JNSKR_FUZZ_EXAMPLES=2000 for a deeper run
EXAMPLES = int(os.environ.get("JNSKR_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

pytestmark = pytest.mark.filterwarnings("error")

# text that is mostly well-formed, with the characters that break parsers mixed in (Unicode
# digits, a byte-order mark, quotes, separators)
INT_TEXT = st.text(alphabet="0123456789 \t\r\n-x.\u00b2\u0661", max_size=120)
TOKEN_TEXT = st.text(alphabet="ab12 \t\n\r,:;-\"'é\u00b2", max_size=120)
JUNK = st.binary(max_size=64)
BOM = "\ufeff"


def _with_bom(text_strategy):
    return st.one_of(text_strategy, text_strategy.map(lambda t: BOM + t))


def _write(folder: Path, files: dict[str, str | bytes | None]) -> None:
    for name, content in files.items():
        if content is None:
            continue
        data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
        (folder / name).write_bytes(data)


def _load_or_data_error(reader, path, **kw) -> Dataset | None:
    """Run a reader: a valid Dataset, or a one-line DataError naming a file under ``path`` (and a
    line of it that exists); anything else propagates (a bug)."""
    try:
        ds = reader(path, **kw)
    except DataError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg.strip(), msg  # one line
        folder = Path(path) if Path(path).is_dir() else Path(path).parent
        assert exc.path is not None and Path(exc.path).is_relative_to(folder), msg  # names the file
        if exc.line is not None:
            n_lines = Path(exc.path).read_bytes().count(b"\n") + 1
            assert 1 <= exc.line <= n_lines, msg
        return None
    assert isinstance(ds, Dataset)
    validate_dataset(ds)  # the in-memory contract holds
    assert ds.train.n_users == ds.n_users and ds.train.n_items == ds.n_items
    if ds.user_ids is not None:
        assert len(ds.user_ids) == ds.n_users
    if ds.item_ids is not None:
        assert len(ds.item_ids) == ds.n_items
    return ds


@FUZZ
@given(train=st.one_of(_with_bom(INT_TEXT), JUNK), test=st.one_of(st.none(), INT_TEXT),
       kg=st.one_of(st.none(), INT_TEXT, JUNK),
       user_list=st.one_of(st.none(), st.just("org_id remap_id\n"), TOKEN_TEXT.map(lambda t: "org_id remap_id\n" + t)),
       item_list=st.one_of(st.none(), TOKEN_TEXT.map(lambda t: "org_id remap_id freebase_id\n" + t)),
       relation_list=st.one_of(st.none(), TOKEN_TEXT))
@example(train="0 1 2\n1 2 3\n", test="0 3\n", kg="0 0 5\n", user_list=None, item_list=None, relation_list=None)
def test_kgat_lines(train, test, kg, user_list, item_list, relation_list):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        _write(d, {"train.txt": train, "test.txt": test, "kg_final.txt": kg, "user_list.txt": user_list,
                   "item_list.txt": item_list, "relation_list.txt": relation_list})
        _load_or_data_error(read_kgat, d)


HEADER_FIELDS = ["user_id:token", "item_id:token", "rating:float", "timestamp:float", "user_id:float",
                 "item_id", ":token", "title:token_seq", "x:float_seq", "item_id:weird", "user_id:token"]


@FUZZ
@given(header=st.lists(st.sampled_from(HEADER_FIELDS), min_size=1, max_size=4),
       body=TOKEN_TEXT,
       kg_ids=st.sampled_from([None, "items"]),
       kg=st.one_of(st.none(), TOKEN_TEXT.map(lambda t: "head_id:token\trelation_id:token\ttail_id:token\n" + t)),
       link=st.one_of(st.none(), TOKEN_TEXT.map(lambda t: "item_id:token\tentity_id:token\n" + t)),
       item=st.one_of(st.none(), TOKEN_TEXT.map(lambda t: "item_id:token\tmovie_title:token_seq\n" + t)),
       link_only=st.booleans())
@example(header=["user_id:token", "item_id:token"], body="1\t2\n1\t3\n2\t2\n", kg_ids=None, kg=None, link=None,
         item=None, link_only=False)
def test_recbole_atomic_files(header, body, kg_ids, kg, link, item, link_only):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d) / "fz"
        d.mkdir()
        _write(d, {"fz.inter": "\t".join(header) + "\n" + body, "fz.kg": kg, "fz.link": link, "fz.item": item})
        _load_or_data_error(read_recbole, d, link_only=link_only, kg_ids=kg_ids)


@FUZZ
@given(inter=st.one_of(_with_bom(TOKEN_TEXT), TOKEN_TEXT.map(lambda t: "user\titem\n" + t),
                       TOKEN_TEXT.map(lambda t: "user_id,item_id,rating\n" + t), JUNK),
       test=st.one_of(st.none(), TOKEN_TEXT),
       kg=st.one_of(st.none(), TOKEN_TEXT, TOKEN_TEXT.map(lambda t: "head\trelation\ttail\n" + t)),
       links=st.one_of(st.none(), TOKEN_TEXT),
       names=st.one_of(st.none(), TOKEN_TEXT),
       suffix=st.sampled_from([".tsv", ".csv"]),
       options=st.fixed_dictionaries({}, optional={
           "weight": st.sampled_from(["ignore", "confidence"]),
           "kg_ids": st.sampled_from(["items", "links"]),
           "split": st.sampled_from(["ratio", "leave_one_out", "time"]),
           "separator": st.sampled_from(["auto", "tab", "comma", "whitespace", ";"]),
           "columns": st.fixed_dictionaries({}, optional={"user": st.sampled_from([1, 2, "user", "a"]),
                                                          "weight": st.sampled_from([3, "rating"])}),
           "link_only": st.booleans()}))
@example(inter="u1\ti1\nu1\ti2\nu2\ti1\n", test=None, kg="i1\tr\te\n", links=None, names=None, suffix=".tsv",
         options={"kg_ids": "items"})
def test_tsv_files(inter, test, kg, links, names, suffix, options):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        _write(d, {f"interactions{suffix}": inter, f"test{suffix}": test, f"kg{suffix}": kg,
                   f"links{suffix}": links, f"names{suffix}": names})
        _load_or_data_error(read_tsv, d, **options)
        _load_or_data_error(read_tsv, d / f"interactions{suffix}")


ARRAYS = st.one_of(
    st.lists(st.integers(-3, 8), max_size=6).map(lambda v: np.array(v, dtype=np.int64)),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6).map(np.array),
    st.integers(-2, 9).map(np.array),
    st.lists(st.lists(st.integers(0, 5), min_size=2, max_size=2), max_size=3).map(lambda v: np.array(v, dtype=np.int64)),
    st.lists(st.text(alphabet="ab1", max_size=2), max_size=4).map(lambda v: np.array(v, dtype=str)),
)


@FUZZ
@given(members=st.fixed_dictionaries({}, optional={k: ARRAYS for k in ("indptr", "indices", "data", "shape")}),
       fmt=st.sampled_from(["csr", "csc", 7]))
@example(members={"indptr": np.array([0, 1, 2]), "indices": np.array([0, 1]), "data": np.array([1.0, 2.0]),
                  "shape": np.array([2, 3])}, fmt="csr")
def test_kg_feat_npz(members, fmt):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        _write(d, {"train.txt": "0 0 1\n1 1\n"})
        with open(d / "kg_feat.npz", "wb") as fh:
            np.savez(fh, format=np.array(fmt), **members)
        _load_or_data_error(read_kgat, d)


@settings(max_examples=max(100, EXAMPLES), deadline=None, database=None)
@given(raw=st.one_of(st.binary(max_size=80), INT_TEXT.map(str.encode)))
def test_parse_int_lines_on_any_bytes(raw):
    try:
        toks = parse_int_lines(raw, "f.txt")
    except DataError:
        return
    assert toks.values.dtype == np.int64 and np.all(toks.values >= 0)
    assert len(toks.values) == len(toks.lines) == len(toks.first)
    assert toks.values.tolist() == [int(t) for t in raw.split()]


@settings(max_examples=40, deadline=None, database=None)
@given(names=st.lists(st.sampled_from(["train.txt", "a.inter", "interactions.csv", "x.tsv", "junk.bin",
                                       "kg_final.txt"]), max_size=3, unique=True))
def test_detect_format_is_a_format_or_a_data_error(names):
    with tempfile.TemporaryDirectory() as d:
        for n in names:
            (Path(d) / n).write_text("1 2\n")
        try:
            assert detect_format(d) in ("kgat", "recbole", "tsv")
        except DataError:
            pass


# --------------------------------------------------------------------------- regressions


def test_read_bytes_refuses_junk(tmp_path):
    p = tmp_path / "f.txt"
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="not UTF-8"):
        read_bytes(p)


def test_regression_duplicate_atomic_header_field(tmp_path):
    """Found by test_recbole_atomic_files: a header naming a column twice made the header map
    shorter than the rows, and reading a column raised IndexError instead of a DataError."""
    d = tmp_path / "fz"
    d.mkdir()
    (d / "fz.inter").write_text("user_id:token\tuser_id:token\titem_id:token\n\t1\n")
    with pytest.raises(DataError, match=r"fz.inter:1: header field 'user_id' appears twice"):
        read_recbole(d)
