"""Validation (statistics, warnings, contract checks) and the seeded splits."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jnskr.data import Dataset, Interactions, KnowledgeGraph, read_kgat
from jnskr.data.split import holdout_split, n_test_items, ratio_split
from jnskr.data.validate import TABLE, finish, validate_dataset
from jnskr.errors import DataError
from conftest import DATA

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
