"""Seeded per-user splits (a given test file always wins; these are for files without one).

* ``ratio`` (`ratio_split`): the train/test split used to build ml-100k and for RecBole
  ``.inter`` / TSV files without a given test set.  It reproduces ``ml100k-kgat`` byte for byte:
  one ``random.Random(seed)`` shared by all users, users in dense-id order, each user's sorted
  item list shuffled, the first ``round(test_ratio * n)`` items (Python's round, clamped to
  ``1..n-1``) go to test.  Users with a single item keep it in train.
* ``leave_one_out`` (`leave_one_out_split`): one item of every user with n >= 2 items goes to
  test: the latest one when the data has timestamps, else one drawn at random (seeded).
* ``time`` (`time_split`): every user's latest ``n_test_items(n, test_ratio)`` items (by
  timestamp) go to test; needs a timestamp column.
* `holdout_split`: the trainer's validation split of the train set (vectorised numpy): each user
  with n >= 2 items holds out ``max(1, floor(ratio * n))`` of them; users with 1 item keep it.
  `validation_split` is the same for model selection, and refuses an empty validation part.

Ties in time are broken at random (seeded).  A pair listed several times counts once (its
values summed, its timestamp the latest).  Every split keeps `Interactions.values`.
`split_pairs` runs the method named in ``data.split`` and returns what it did as a dict
(recorded in ``Dataset.provenance["split"]``).
"""

from __future__ import annotations

import random

import numpy as np

from jnskr.data.arrays import Interactions
from jnskr.errors import DataError

METHODS = ("ratio", "leave_one_out", "time")


def n_test_items(n: int, test_ratio: float) -> int:
    """How many of a user's ``n`` items `ratio_split` puts in test."""
    if n < 2:
        return 0
    return min(n - 1, max(1, round(test_ratio * n)))


def ratio_split(
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    test_ratio: float = 0.2,
    seed: int = 2020,
    values: np.ndarray | None = None,
) -> tuple[Interactions, Interactions]:
    """Split (user, item) pairs per user into (train, test); duplicates are merged first."""
    full = Interactions.from_pairs(users, items, n_users, n_items, values)
    rng = random.Random(seed)
    test_mask = np.zeros(full.nnz, dtype=bool)
    ip = full.indptr
    for u in range(n_users):
        a, b = int(ip[u]), int(ip[u + 1])
        k = n_test_items(b - a, test_ratio)
        if k == 0:
            continue
        order = list(range(a, b))
        rng.shuffle(order)  # the same permutation as shuffling the sorted item list
        test_mask[order[:k]] = True
    return full.select(~test_mask), full.select(test_mask)


def pair_times(users: np.ndarray, items: np.ndarray, n_items: int, times: np.ndarray) -> np.ndarray:
    """The latest timestamp of each distinct (user, item) pair, in `Interactions.from_pairs` order."""
    key = np.asarray(users, dtype=np.int64) * np.int64(max(n_items, 1)) + np.asarray(items, dtype=np.int64)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]]) if len(ks) else np.zeros(0, np.int64)
    t = np.asarray(times, dtype=np.float64)[order]
    return np.maximum.reduceat(t, starts) if len(t) else t


def _latest(full: Interactions, times: np.ndarray | None, k: np.ndarray, seed: int) -> np.ndarray:
    """Mask of the last ``k[u]`` pairs of every user u, ordered by ``times`` (None: a random
    order), ties broken at random (seeded)."""
    u, _ = full.pairs()
    tie = np.random.default_rng(seed).random(full.nnz)
    primary = times if times is not None else tie
    order = np.lexsort((tie, primary, u))  # by user, then time, then tie-break
    counts = full.user_counts()
    from_end = np.empty(full.nnz, dtype=np.int64)
    from_end[order] = np.repeat(full.indptr[1:], counts) - 1 - np.arange(full.nnz)
    return from_end < k[u]


def leave_one_out_split(full: Interactions, seed: int = 2020, times: np.ndarray | None = None
                        ) -> tuple[Interactions, Interactions]:
    """One item per user with >= 2 items to test: the latest (``times`` aligned with ``full``'s
    pairs), else a seeded random one."""
    k = (full.user_counts() >= 2).astype(np.int64)
    test = _latest(full, times, k, seed)
    return full.select(~test), full.select(test)


def time_split(full: Interactions, times: np.ndarray, test_ratio: float = 0.2, seed: int = 2020
               ) -> tuple[Interactions, Interactions]:
    """Every user's latest ``n_test_items(n, test_ratio)`` items to test."""
    k = np.array([n_test_items(int(n), test_ratio) for n in full.user_counts()], dtype=np.int64)
    test = _latest(full, np.asarray(times, dtype=np.float64), k, seed)
    return full.select(~test), full.select(test)


def split_pairs(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, *, method: str = "ratio",
                test_ratio: float = 0.2, seed: int = 2020, values: np.ndarray | None = None,
                times: np.ndarray | None = None) -> tuple[Interactions, Interactions, dict]:
    """(train, test, what was done) by ``method`` (one of `METHODS`).  ``times`` (one per
    pair as given) is needed by ``time`` and used by ``leave_one_out``."""
    if method not in METHODS:
        raise ValueError(f"split must be one of {', '.join(METHODS)}, not {method!r}")
    if method == "ratio":
        train, test = ratio_split(users, items, n_users, n_items, test_ratio, seed, values)
        return train, test, {"method": "ratio", "test_ratio": test_ratio, "seed": seed}
    full = Interactions.from_pairs(users, items, n_users, n_items, values)
    pt = None if times is None else pair_times(users, items, n_items, times)
    if method == "leave_one_out":
        train, test = leave_one_out_split(full, seed, pt)
        return train, test, {"method": "leave_one_out", "order": "time" if pt is not None else "random",
                             "seed": seed}
    if pt is None:
        raise ValueError("split 'time' needs timestamps")
    train, test = time_split(full, pt, test_ratio, seed)
    return train, test, {"method": "time", "test_ratio": test_ratio, "seed": seed}


def holdout_split(train: Interactions, ratio: float = 0.1, seed: int = 0) -> tuple[Interactions, Interactions]:
    """Hold out ``max(1, floor(ratio * n))`` items of every user with ``n >= 2`` train items.

    Returns ``(train_part, valid_part)``; their union is ``train`` and they are disjoint; values
    are kept.
    """
    n = train.user_counts()
    u, _ = train.pairs()
    k = np.where(n >= 2, np.maximum(1, np.floor(ratio * n).astype(np.int64)), 0)
    key = np.random.default_rng(seed).random(train.nnz)
    order = np.lexsort((key, u))  # by user, random within user
    rank = np.empty(train.nnz, dtype=np.int64)
    rank[order] = np.arange(train.nnz) - np.repeat(train.indptr[:-1], n)
    held = rank < k[u]
    return train.select(~held), train.select(held)


def validation_split(train: Interactions, ratio: float, seed: int, name: str = "the data"
                     ) -> tuple[Interactions, Interactions]:
    """`holdout_split` for model selection; an empty validation part is a `DataError` (selection on
    nothing would keep the first evaluation and report zeros)."""
    part, valid = holdout_split(train, ratio, seed)
    if valid.nnz == 0 and train.nnz > 0:
        raise DataError("the validation split is empty: no user has 2 or more training items (a user's only "
                        "item stays in train); give users more interactions, or select on test with "
                        "train.protocol: paper", name)
    return part, valid
