"""Datasets built in memory: `from_frames` (pandas DataFrames) and `from_csr` (scipy.sparse).

Both are `Dataset` class methods (``Dataset.from_frames(...)``, ``Dataset.from_csr(...)``) and
run the same steps as the file readers (`jnskr.data.assemble`): weight use, KG linking through a
links table or ``kg_ids="items"``, the seeded split when no test set is given, validation.

pandas and scipy are optional: each is imported only when its function runs, with a one-line
error naming the package when it is missing.  Raw ids may be of any hashable type; they are
stored as strings (``str(value)``); missing values (None, NaN) are errors.
"""

from __future__ import annotations

import importlib

import numpy as np

from jnskr.data.assemble import Links, Names, Options, Pairs, Triples, assemble
from jnskr.data.table import parse_times
from jnskr.errors import DataError, JnskrError


def _require(module: str, package: str, who: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise JnskrError(f"{who} needs {package}, which is not installed: pip install {package}") from None


def _column(frame, col, source: str) -> np.ndarray:
    if not hasattr(frame, "columns"):
        raise DataError(f"expected a pandas DataFrame, not a {type(frame).__name__}", source)
    if col not in frame.columns:
        have = ", ".join(map(str, frame.columns))
        raise DataError(f"no column {col!r} (columns: {have})", source)
    return frame[col].to_numpy()


def _strings(values, source: str, what: str) -> np.ndarray:
    """Any hashable values -> str array; None/NaN are errors."""
    vals = np.asarray(values, dtype=object)
    missing = np.flatnonzero([v is None or (isinstance(v, float) and v != v) for v in vals.tolist()])
    if len(missing):
        raise DataError(f"{what}: {len(missing):,} missing values (first at row {int(missing[0])})", source)
    out = np.asarray([str(v) for v in vals.tolist()], dtype=str)
    if len({type(v) for v in vals.tolist()}) > 1:  # 1 and "1" would silently become one id "1"
        first: dict[str, object] = {}
        for v, t in zip(vals.tolist(), out.tolist()):
            if t in first and first[t] != v:
                raise DataError(f"{what}: {first[t]!r} and {v!r} are different values with the same id {t!r}; "
                                "give ids of one type", source)
            first.setdefault(t, v)
    empty = np.flatnonzero(np.char.str_len(out) == 0) if len(out) else []
    if len(empty):
        raise DataError(f"{what}: empty id at row {int(empty[0])}", source)
    return out


def _numbers(values, source: str, what: str) -> np.ndarray:
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{what}: not numbers", source) from None
    bad = np.flatnonzero(~np.isfinite(out))
    if len(bad):
        raise DataError(f"{what}: {out[bad[0]]} at row {int(bad[0])} is not a finite number", source)
    return out


def _times(values, source: str) -> np.ndarray:
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.datetime64):
        if np.isnat(arr).any():
            raise DataError(f"timestamp: missing value at row {int(np.flatnonzero(np.isnat(arr))[0])}", source)
        return arr.astype("datetime64[ns]").astype(np.int64).astype(np.float64) / 1e9
    if np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating):
        return _numbers(arr, source, "timestamp")
    s = _strings(arr, source, "timestamp")
    return parse_times(s, np.arange(1, len(s) + 1), source)


def _pairs(frame, user_col, item_col, weight_col, timestamp_col, source: str) -> Pairs:
    return Pairs(
        users=_strings(_column(frame, user_col, source), source, f"column {user_col!r}"),
        items=_strings(_column(frame, item_col, source), source, f"column {item_col!r}"),
        weights=None if weight_col is None else _numbers(_column(frame, weight_col, source), source,
                                                          f"column {weight_col!r}"),
        times=None if timestamp_col is None else _times(_column(frame, timestamp_col, source), source),
        source=source, weight_name=None if weight_col is None else str(weight_col))


def _triples(kg, head_col, relation_col, tail_col, source: str = "kg") -> Triples:
    if hasattr(kg, "columns"):
        cols = [_column(kg, c, source) for c in (head_col, relation_col, tail_col)]
    else:
        arr = np.asarray(kg, dtype=object)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise DataError(f"expected a DataFrame or an (n, 3) array of (head, relation, tail), got shape "
                            f"{arr.shape}", source)
        cols = [arr[:, 0], arr[:, 1], arr[:, 2]]
    h, r, t = (_strings(c, source, w) for c, w in zip(cols, ("head", "relation", "tail")))
    if len(h) == 0:
        raise DataError("no triples", source)
    return Triples(h, r, t, source)


def _options(weight, weight_threshold, kg_ids, split, test_ratio, seed, link_only, max_memory,
             confidence_norm, confidence_transform) -> Options:
    return Options(weight=weight, weight_threshold=weight_threshold, kg_ids=kg_ids, split=split,
                   test_ratio=test_ratio, seed=seed, link_only=link_only, max_memory=max_memory,
                   confidence_norm=confidence_norm, confidence_transform=confidence_transform)


def from_frames(cls, interactions, kg=None, links=None, names=None, *, user_col="user", item_col="item",
                weight_col=None, timestamp_col=None, head_col="head", relation_col="relation", tail_col="tail",
                link_item_col="item", link_entity_col="entity", name_item_col="item", name_col="name",
                test=None, weight: str | None = None, weight_threshold: float | None = None,
                kg_ids: str | None = None, split: str = "ratio", test_ratio: float = 0.2, seed: int = 2020,
                link_only: bool = False, name: str = "frames", max_memory: float | None = None,
                confidence_norm: str = "mean", confidence_transform: str = "none"):
    """A validated `Dataset` from pandas DataFrames.

    Args:
        interactions: one row per (user, item) positive; ``weight_col`` / ``timestamp_col``
            optional (timestamps: numbers, datetimes or ISO-8601 strings).
        kg: (head, relation, tail) rows (a DataFrame, or an (n, 3) array).
        links: item -> entity rows (``link_item_col``, ``link_entity_col``); without it the
            KG needs ``kg_ids="items"`` (its entity ids are item ids).
        names: item -> display name rows (``name_item_col``, ``name_col``).
        test: a test DataFrame like ``interactions``; without it a seeded per-user test set is
            split off (``split``: ``ratio`` | ``leave_one_out`` | ``time``; ``test_ratio``; ``seed``).
        weight: ``"confidence"`` (the default when ``weight_col`` is given: the weights become
            ``train.values``), ``"threshold"`` (keep rows with weight >= ``weight_threshold``)
            or ``"ignore"``.
        confidence_norm: ``"mean"`` (default: confidence values divided by their mean over the
            training pairs, so the average positive weighs 1) or ``"none"`` (as given).
        confidence_transform: ``"none"`` (default) or ``"log1p"``: confidence values v become
            log(1 + v) before the normalisation (skewed counts such as play counts).
        link_only: keep only interactions of items linked to a KG entity.
    """
    _require("pandas", "pandas", "Dataset.from_frames")
    weight = weight or ("confidence" if weight_col is not None else "ignore")
    opts = _options(weight, weight_threshold, kg_ids, split, test_ratio, seed, link_only, max_memory,
                    confidence_norm, confidence_transform)
    train = _pairs(interactions, user_col, item_col, weight_col, timestamp_col, "interactions frame")
    te = None if test is None else _pairs(test, user_col, item_col, weight_col if weight_col in getattr(
        test, "columns", ()) else None, None, "test frame")
    if te is not None and weight != "ignore" and te.weights is None:
        raise DataError(f"no column {weight_col!r}: the test frame needs the weight column too", "test frame")
    graph = None if kg is None else _triples(kg, head_col, relation_col, tail_col, "kg frame")
    lk = None
    if links is not None:
        lk = Links(_strings(_column(links, link_item_col, "links frame"), "links frame", "item"),
                   _strings(_column(links, link_entity_col, "links frame"), "links frame", "entity"), "links frame")
    nm = None
    if names is not None:
        nm = Names(_strings(_column(names, name_item_col, "names frame"), "names frame", "item"),
                   np.asarray([str(x) for x in _column(names, name_col, "names frame").tolist()], dtype=str),
                   "names frame")
    return assemble(cls, name=name, train=train, test=te, kg=graph, links=lk, names=nm, opts=opts,
                    provenance={"format": "frames"})


def _sparse(sp, m, what: str):
    if sp.issparse(m):
        m = sp.csr_matrix(m)
    else:
        arr = np.asarray(m)
        if arr.ndim != 2:
            raise DataError(f"expected a 2-D scipy.sparse matrix (users x items), got shape {arr.shape}", what)
        m = sp.csr_matrix(arr)
    m = m.copy()
    m.sum_duplicates()
    m.eliminate_zeros()
    if not (np.issubdtype(m.dtype, np.number) or m.dtype == bool) or np.issubdtype(m.dtype, np.complexfloating):
        raise DataError(f"values of dtype {m.dtype} are not numbers", what)
    return m


def from_csr(cls, matrix, test=None, item_ids=None, user_ids=None, kg=None, links=None, *,
             head_col="head", relation_col="relation", tail_col="tail", link_item_col="item",
             link_entity_col="entity", item_names=None, weight: str | None = None,
             weight_threshold: float | None = None, kg_ids: str | None = None, split: str = "ratio",
             test_ratio: float = 0.2, seed: int = 2020, link_only: bool = False, name: str = "csr",
             max_memory: float | None = None, confidence_norm: str = "mean", confidence_transform: str = "none"):
    """A validated `Dataset` from a users x items scipy.sparse matrix (row u = user u, column i
    = item i; stored zeros are not interactions).

    ``user_ids`` / ``item_ids``: raw ids of the rows / columns (default "0", "1", ...);
    users and items keep the matrix's order.  ``test``: a matrix of the same shape (else a
    seeded split, as `from_frames`).  ``weight``: default ``"ignore"`` (with a warning when
    the values are not all 1), or ``"confidence"`` / ``"threshold"`` as in `from_frames`.
    ``kg``: a DataFrame or an (n, 3) array of (head, relation, tail) raw ids, linked through
    ``links`` or ``kg_ids="items"``.  ``item_names``: one display name per column.
    """
    sp = _require("scipy.sparse", "scipy", "Dataset.from_csr")
    shape = getattr(matrix, "shape", ()) if sp.issparse(matrix) else ()
    if len(shape) == 2:  # the estimate first: the CSR offsets and default ids below are n long
        from jnskr.data.memory import check_memory

        check_memory("matrix", None, f"shape {tuple(shape)}", dict(n_users=int(shape[0]), n_items=int(shape[1]),
                     n_interactions=int(matrix.nnz), id_chars=len(str(max(shape)))), max_memory)
    m = _sparse(sp, matrix, "matrix")
    n_users, n_items = m.shape
    uid = np.arange(n_users).astype(str) if user_ids is None else _strings(user_ids, "user_ids", "user id")
    iid = np.arange(n_items).astype(str) if item_ids is None else _strings(item_ids, "item_ids", "item id")
    for ids, n, what in ((uid, n_users, "user_ids"), (iid, n_items, "item_ids")):
        if len(ids) != n:
            raise DataError(f"{len(ids):,} ids for {n:,} {'rows' if what == 'user_ids' else 'columns'}", what)
        if len(np.unique(ids)) != n:
            raise DataError("ids are not unique", what)
    weight = weight or "ignore"
    opts = _options(weight, weight_threshold, kg_ids, split, test_ratio, seed, link_only, max_memory,
                    confidence_norm, confidence_transform)

    def pairs(x, source):
        coo = x.tocoo()
        w = np.asarray(coo.data, dtype=np.float64)
        named = "the matrix values are" if not np.all(w == 1) else None
        return Pairs(uid[coo.row], iid[coo.col], w, None, source, None, named)

    train = pairs(m, "matrix")
    te = None
    if test is not None:
        t = _sparse(sp, test, "test")
        if t.shape != m.shape:
            raise DataError(f"shape {t.shape} differs from the matrix's {m.shape}", "test")
        te = pairs(t, "test")
    graph = None if kg is None else _triples(kg, head_col, relation_col, tail_col, "kg")
    lk = None
    if links is not None:
        lk = Links(_strings(_column(links, link_item_col, "links"), "links", "item"),
                   _strings(_column(links, link_entity_col, "links"), "links", "entity"), "links")
    nm = None
    if item_names is not None:
        names = np.asarray([str(x) for x in item_names], dtype=str)
        if len(names) != n_items:
            raise DataError(f"{len(names):,} names for {n_items:,} columns", "item_names")
        nm = Names(iid, names, "item_names")
    return assemble(cls, name=name, train=train, test=te, kg=graph, links=lk, names=nm, opts=opts,
                    provenance={"format": "csr"}, user_order=uid, item_order=iid)
