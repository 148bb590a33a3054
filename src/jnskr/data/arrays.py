"""The array containers every dataset is made of: `Interactions` (CSR) and `KnowledgeGraph`.

No project imports: every other data module builds on these.

* `Interactions` is a CSR matrix over users (``indptr[u]:indptr[u+1]`` slices ``indices``, items
  sorted ascending and unique per user), with optional per-pair ``values`` (float64, aligned
  with ``indices``): the confidence of each positive when a weight column is used as
  confidence (``data.weight: confidence``); ``None`` means every pair weighs 1.
* `KnowledgeGraph` holds (head, relation, tail) triples over entities 0..n_entities-1, where
  entity i (< n_items) is item i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _dedupe_sorted(key: np.ndarray) -> np.ndarray:
    """Mask of the first element of each run of equal values in a sorted array."""
    keep = np.ones(len(key), dtype=bool)
    if len(key) > 1:
        np.not_equal(key[1:], key[:-1], out=keep[1:])
    return keep


@dataclass
class Interactions:
    """A CSR user x item matrix of positives (unique, sorted item ids per user).

    ``values`` (float64 [nnz] or None): a per-pair weight aligned with ``indices``; kept through
    `from_pairs` (duplicates summed), `transpose`, `select`, the splits, the cache and imports.
    """

    indptr: np.ndarray  # int64 [n_users + 1]
    indices: np.ndarray  # int64 [nnz]
    n_items: int
    values: np.ndarray | None = None  # float64 [nnz] per-pair weight, or None (all 1)

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def row(self, u: int) -> np.ndarray:
        return self.indices[self.indptr[u] : self.indptr[u + 1]]

    def row_values(self, u: int) -> np.ndarray:
        """The weights of user ``u``'s items (ones when the matrix has no values)."""
        if self.values is None:
            return np.ones(int(self.indptr[u + 1] - self.indptr[u]))
        return self.values[self.indptr[u] : self.indptr[u + 1]]

    def user_counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.indices, minlength=self.n_items).astype(np.int64)

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(users, items) as two int64 arrays of length nnz."""
        users = np.repeat(np.arange(self.n_users, dtype=np.int64), self.user_counts())
        return users, self.indices

    @classmethod
    def from_pairs(cls, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int,
                   values: np.ndarray | None = None) -> "Interactions":
        """Build from (user, item) pairs; duplicates are merged (their ``values`` summed), rows
        sorted.  Sort-based: numpy 2.x's hash-based `np.unique` is ~40x slower at 650k pairs."""
        width = np.int64(max(n_items, 1))
        key = np.asarray(users, dtype=np.int64) * width + np.asarray(items, dtype=np.int64)
        vals = None
        if values is None:
            key = np.sort(key)
            key = key[_dedupe_sorted(key)]
        else:
            order = np.argsort(key, kind="stable")
            key = key[order]
            keep = _dedupe_sorted(key)
            v = np.asarray(values, dtype=np.float64)[order]
            vals = np.add.reduceat(v, np.flatnonzero(keep)) if len(v) else v
            key = key[keep]
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(key // width, minlength=n_users), out=indptr[1:])
        return cls(indptr=indptr, indices=(key % width).astype(np.int64), n_items=n_items, values=vals)

    def select(self, mask: np.ndarray) -> "Interactions":
        """The pairs where ``mask`` (bool [nnz], in CSR order) is true, values kept."""
        mask = np.asarray(mask, dtype=bool)
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.pairs()[0][mask], minlength=self.n_users), out=indptr[1:])
        vals = None if self.values is None else self.values[mask]
        return Interactions(indptr=indptr, indices=self.indices[mask], n_items=self.n_items, values=vals)

    def transpose(self) -> "Interactions":
        """Item x user CSR (for item batches), values kept."""
        u, i = self.pairs()
        return Interactions.from_pairs(i, u, self.n_items, self.n_users, self.values)


@dataclass
class KnowledgeGraph:
    """Raw KG triples over entities; entity i < n_items is item i."""

    heads: np.ndarray  # int64 [n_triples]
    relations: np.ndarray  # int64 [n_triples]
    tails: np.ndarray  # int64 [n_triples]
    n_entities: int
    n_relations: int
    relation_names: np.ndarray | None = None  # str [n_relations]
    entity_ids: np.ndarray | None = None  # str [n_entities] raw entity ids (e.g. Freebase mids)
    entity_names: np.ndarray | None = None  # str [n_entities]

    @property
    def n_triples(self) -> int:
        return len(self.heads)
