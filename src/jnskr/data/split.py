"""Seeded per-user splits.

* `ratio_split`: the train/test split used to build ml-100k and for RecBole ``.inter`` / TSV
  files without a given test set.  It reproduces ``ml100k-kgat`` byte for byte: one
  ``random.Random(seed)`` shared by all users, users in dense-id order, each user's sorted item
  list shuffled, the first ``round(test_ratio * n)`` items (Python's round, clamped to
  ``1..n-1``) go to test.  Users with a single item keep it in train.
* `holdout_split`: the trainer's validation split of the train set (vectorised numpy): each user
  with n >= 2 items holds out ``max(1, floor(ratio * n))`` of them; users with 1 item keep it.
"""

from __future__ import annotations

import random

import numpy as np

from jnskr.data.dataset import Interactions
from jnskr.data.readers.common import csr_from_pairs


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
) -> tuple[Interactions, Interactions]:
    """Split (user, item) pairs per user into (train, test); duplicates are merged first."""
    full = csr_from_pairs(users, items, n_users, n_items)
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
    u_all, i_all = full.pairs()
    train = csr_from_pairs(u_all[~test_mask], i_all[~test_mask], n_users, n_items)
    test = csr_from_pairs(u_all[test_mask], i_all[test_mask], n_users, n_items)
    return train, test


def holdout_split(train: Interactions, ratio: float = 0.1, seed: int = 0) -> tuple[Interactions, Interactions]:
    """Hold out ``max(1, floor(ratio * n))`` items of every user with ``n >= 2`` train items.

    Returns ``(train_part, valid_part)``; their union is ``train`` and they are disjoint.
    """
    n = train.user_counts()
    u, i = train.pairs()
    k = np.where(n >= 2, np.maximum(1, np.floor(ratio * n).astype(np.int64)), 0)
    key = np.random.default_rng(seed).random(train.nnz)
    order = np.lexsort((key, u))  # by user, random within user
    rank = np.empty(train.nnz, dtype=np.int64)
    rank[order] = np.arange(train.nnz) - np.repeat(train.indptr[:-1], n)
    held = rank < k[u]
    return (
        csr_from_pairs(u[~held], i[~held], train.n_users, train.n_items),
        csr_from_pairs(u[held], i[held], train.n_users, train.n_items),
    )
