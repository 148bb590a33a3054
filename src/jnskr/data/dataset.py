"""The validated in-memory dataset every reader produces.

Everything is dense integer ids and flat numpy arrays: no Python object per interaction.

* Users are 0..n_users-1, items 0..n_items-1.  Interactions are CSR matrices over users
  (`indptr[u]:indptr[u+1]` slices `indices`, items sorted ascending and unique per user).
* The KG, when present, is a list of (head, relation, tail) triples over *entities*
  0..n_entities-1, where entity i (< n_items) is item i (the KGAT convention).  Relations are
  0..n_relations-1.  It is the raw KG: the item-centric preprocessing of the spec (§1.2) is
  `jnskr.data.kg.build_item_kg`.
* Raw ids (the dataset's original ids, as strings) and optional names live in numpy string
  arrays indexed by the dense id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Interactions:
    """A CSR user x item 0/1 matrix (unique, sorted item ids per user)."""

    indptr: np.ndarray  # int64 [n_users + 1]
    indices: np.ndarray  # int64 [nnz]
    n_items: int

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def row(self, u: int) -> np.ndarray:
        return self.indices[self.indptr[u] : self.indptr[u + 1]]

    def user_counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.indices, minlength=self.n_items).astype(np.int64)

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(users, items) as two int64 arrays of length nnz."""
        users = np.repeat(np.arange(self.n_users, dtype=np.int64), self.user_counts())
        return users, self.indices

    @classmethod
    def from_pairs(cls, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> "Interactions":
        """Build from (user, item) pairs; duplicates are removed, rows sorted (sort-based: numpy
        2.x's hash-based `np.unique` is ~40x slower at 650k pairs)."""
        width = np.int64(max(n_items, 1))
        key = np.sort(np.asarray(users, dtype=np.int64) * width + np.asarray(items, dtype=np.int64))
        if len(key) > 1:
            keep = np.empty(len(key), dtype=bool)
            keep[0] = True
            np.not_equal(key[1:], key[:-1], out=keep[1:])
            key = key[keep]
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(key // width, minlength=n_users), out=indptr[1:])
        return cls(indptr=indptr, indices=(key % width).astype(np.int64), n_items=n_items)

    def transpose(self) -> "Interactions":
        """Item x user CSR (for item batches)."""
        u, i = self.pairs()
        return Interactions.from_pairs(i, u, self.n_items, self.n_users)


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


@dataclass
class Dataset:
    """A validated dataset: train/test interactions, an optional KG, raw-id maps."""

    name: str
    n_users: int
    n_items: int
    train: Interactions
    test: Interactions
    kg: KnowledgeGraph | None = None
    user_ids: np.ndarray | None = None  # str [n_users] raw user ids
    item_ids: np.ndarray | None = None  # str [n_items] raw item ids
    item_names: np.ndarray | None = None  # str [n_items] titles, when the data has them
    source_hash: str = ""  # fingerprint of the source files (cache key)
    stats: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        kg = f", {self.kg.n_triples} KG triples" if self.kg is not None else ", no KG"
        return (f"Dataset({self.name!r}: {self.n_users} users, {self.n_items} items, "
                f"{self.train.nnz} train / {self.test.nnz} test pairs{kg})")

    @property
    def has_kg(self) -> bool:
        return self.kg is not None and self.kg.n_triples > 0

    def raw_user_id(self, u: int) -> str:
        return str(self.user_ids[u]) if self.user_ids is not None else str(u)

    def raw_item_id(self, i: int) -> str:
        return str(self.item_ids[i]) if self.item_ids is not None else str(i)

    def user_index(self) -> dict[str, int]:
        ids = self.user_ids if self.user_ids is not None else np.arange(self.n_users).astype(str)
        return {str(x): k for k, x in enumerate(ids)}

    def item_index(self) -> dict[str, int]:
        ids = self.item_ids if self.item_ids is not None else np.arange(self.n_items).astype(str)
        return {str(x): k for k, x in enumerate(ids)}

    def fingerprint(self) -> str:
        """A content hash of the arrays (independent of where they were read from)."""
        h = hashlib.sha256()
        for a in (self.train.indptr, self.train.indices, self.test.indptr, self.test.indices):
            h.update(np.ascontiguousarray(a).tobytes())
        if self.kg is not None:
            for a in (self.kg.heads, self.kg.relations, self.kg.tails):
                h.update(np.ascontiguousarray(a).tobytes())
        h.update(f"{self.n_users},{self.n_items}".encode())
        return h.hexdigest()[:16]
