"""`Dataset.from_frames` (pandas) and `Dataset.from_csr` (scipy.sparse): the same rules as the file
readers (weights, KG linking, splits, validation), raw ids of any type stored as strings."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from jnskr.data.dataset import Dataset
from jnskr.errors import DataError, JnskrError

pd = pytest.importorskip("pandas")
pytestmark = pytest.mark.filterwarnings("error")


def inter():
    return pd.DataFrame({"user": [1, 1, 1, 2, 2, 3, 3, 3, 3, 3],
                         "item": ["a", "b", "c", "a", "d", "b", "c", "d", "e", "a"],
                         "plays": [5, 1, 2, 3, 3, 1, 1, 1, 10, 2],
                         "ts": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-01", "2020-02-01",
                                               "2020-01-01", "2020-01-05", "2020-01-03", "2020-01-04", "2020-01-02"])})


KG = pd.DataFrame({"head": ["m1", "m2", "m1"], "relation": ["genre", "genre", "era"], "tail": ["jazz", "rock", "60s"]})
LINKS = pd.DataFrame({"item": ["a", "b"], "entity": ["m1", "m2"]})


def test_from_frames_like_the_file_readers():
    ds = Dataset.from_frames(inter(), KG, LINKS, pd.DataFrame({"item": ["a", "c"], "name": ["Alpha", "Gamma"]}))
    assert ds.user_ids.tolist() == ["1", "2", "3"] and ds.item_ids.tolist() == ["a", "b", "c", "d", "e"]
    assert ds.item_names.tolist() == ["Alpha", "", "Gamma", "", ""]
    assert ds.kg.heads.tolist() == [0, 1, 0] and ds.provenance["kg_ids"] == "links"
    assert ds.provenance["split"] == {"method": "ratio", "test_ratio": 0.2, "seed": 2020}
    assert ds.train.values is None  # no weight column given
    again = Dataset.from_frames(inter(), KG, LINKS)
    assert again.fingerprint() == ds.fingerprint()  # seeded
    # the same split as the file readers: the TSV reader on the same rows gives the same arrays
    from jnskr.data.split import ratio_split
    from jnskr.data.parse import dense_ids

    _, uc = dense_ids(inter()["user"].astype(str).to_numpy())
    _, ic = dense_ids(inter()["item"].astype(str).to_numpy())
    tr, te = ratio_split(uc, ic, 3, 5)
    assert np.array_equal(tr.indices, ds.train.indices) and np.array_equal(te.indptr, ds.test.indptr)


def test_from_frames_weights_timestamps_and_given_test():
    ds = Dataset.from_frames(inter(), weight_col="plays", timestamp_col="ts", split="leave_one_out",
                             confidence_norm="none")
    assert ds.provenance["weight"] == {"use": "confidence", "column": "plays"}
    assert ds.provenance["split"]["order"] == "time"
    assert ds.item_ids[ds.test.row(1)].tolist() == ["d"]  # user 2's latest
    assert sorted(ds.train.values.tolist() + ds.test.values.tolist()) == sorted(inter()["plays"].astype(float))
    thr = Dataset.from_frames(inter(), weight_col="plays", weight="threshold", weight_threshold=3)
    assert thr.train.nnz + thr.test.nnz == 4 and thr.train.values is None
    test = pd.DataFrame({"user": [1], "item": ["e"]})
    given = Dataset.from_frames(inter(), test=test)
    assert given.provenance["split"] == {"method": "given"} and given.test.nnz == 1


def test_from_frames_any_hashable_ids_and_errors():
    df = pd.DataFrame({"u": [(1, 2), (1, 2), 3.5], "i": [10, 11, 10]})
    ds = Dataset.from_frames(df, user_col="u", item_col="i")
    assert sorted(ds.user_ids.tolist()) == ["(1, 2)", "3.5"]
    with pytest.raises(DataError, match=r"interactions frame: no column 'user' \(columns: u, i\)"):
        Dataset.from_frames(df)
    bad = pd.DataFrame({"user": ["a", None], "item": ["x", "y"]})
    with pytest.raises(DataError, match=r"column 'user': 1 missing values \(first at row 1\)"):
        Dataset.from_frames(bad)
    with pytest.raises(DataError, match=r"kg frame: a KG reaches the items only through a links file"):
        Dataset.from_frames(inter(), KG)
    items_kg = pd.DataFrame({"head": ["a", "b"], "relation": ["r", "r"], "tail": ["x", "a"]})
    ds2 = Dataset.from_frames(inter(), items_kg, kg_ids="items")
    assert ds2.kg.heads.tolist() == [0, 1] and ds2.kg.tails.tolist()[1] == 0
    with pytest.raises(DataError, match="no training interactions"):
        Dataset.from_frames(pd.DataFrame({"user": [], "item": []}))
    nan_w = inter().assign(plays=[1.0] * 9 + [float("nan")])
    with pytest.raises(DataError, match="is not a finite number"):
        Dataset.from_frames(nan_w, weight_col="plays")


def test_from_csr_keeps_the_matrix_order():
    sp = pytest.importorskip("scipy.sparse")
    m = sp.csr_matrix(np.array([[1, 0, 2, 0], [0, 0, 0, 0], [0, 3, 0, 1], [1, 1, 1, 1]]))
    ds = Dataset.from_csr(m, item_ids=["w", "x", "y", "z"], user_ids=[10, 20, 30, 40])
    assert ds.n_users == 4 and ds.user_ids.tolist() == ["10", "20", "30", "40"]  # the empty row stays
    assert ds.item_ids.tolist() == ["w", "x", "y", "z"]
    assert any("matrix values are ignored" in w for w in ds.warnings)
    conf = Dataset.from_csr(m, weight="confidence", test=sp.csr_matrix((4, 4)), confidence_norm="none")
    assert conf.provenance["split"] == {"method": "given"}
    assert conf.train.values.tolist() == [1, 2, 3, 1, 1, 1, 1, 1]
    kg = np.array([["w", "genre", "jazz"], ["z", "genre", "jazz"]], dtype=object)
    withkg = Dataset.from_csr(m, item_ids=["w", "x", "y", "z"], kg=kg, kg_ids="items",
                              item_names=["W", "X", "Y", "Z"])
    assert withkg.kg.heads.tolist() == [0, 3] and withkg.item_names.tolist() == ["W", "X", "Y", "Z"]
    with pytest.raises(DataError, match="ids are not unique"):
        Dataset.from_csr(m, item_ids=["a", "a", "b", "c"])
    with pytest.raises(DataError, match=r"shape \(2, 2\) differs"):
        Dataset.from_csr(m, test=sp.csr_matrix((2, 2)))


def test_missing_optional_packages_are_one_line_errors(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    with pytest.raises(JnskrError, match="Dataset.from_frames needs pandas, which is not installed: pip install pandas"):
        Dataset.from_frames(object())
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    with pytest.raises(JnskrError, match="Dataset.from_csr needs scipy"):
        Dataset.from_csr(np.eye(2))


def test_values_survive_training_side_helpers():
    """The `values` field is kept by the helpers the trainer uses (holdout_split, transpose)."""
    sp = pytest.importorskip("scipy.sparse")
    from jnskr.data.split import holdout_split

    m = sp.random(50, 30, density=0.3, random_state=1, format="csr")
    ds = Dataset.from_csr(m, weight="confidence")
    part, valid = holdout_split(ds.train, 0.2, 0)
    assert part.values is not None and valid.values is not None
    assert part.nnz + valid.nnz == ds.train.nnz and len(part.values) == part.nnz
