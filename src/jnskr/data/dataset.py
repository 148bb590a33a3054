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
* ``Interactions.values`` (optional, float64, aligned with ``indices``): per-pair confidence
  weights when the data's weight column is used as confidence (``data.weight: confidence``);
  the training side uses them as per-pair positive weights.  ``None``: every pair weighs 1.
* ``Dataset.provenance``: how the dataset was made, JSON-ready, for the run to record:
  ``format``, ``split`` (``{"method": "given" | "ratio" | "leave_one_out" | "time", ...}``),
  ``kg_ids`` (``"links"``, ``"items"`` or, for KGAT folders, ``"kgat"``), ``weight``
  (``{"use": "ignore" | "threshold" | "confidence", ...}``), ``files`` (the files read).

`Dataset.from_frames` (pandas) and `Dataset.from_csr` (scipy.sparse) build one in memory; see
`jnskr.data.frames`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from jnskr.data.arrays import Interactions, KnowledgeGraph
from jnskr.data.frames import from_csr, from_frames

__all__ = ["Dataset", "Interactions", "KnowledgeGraph"]


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
    provenance: dict = field(default_factory=dict)  # format, split, kg_ids, weight, files (JSON-ready)

    from_frames = classmethod(from_frames)
    from_csr = classmethod(from_csr)

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
        for x in (self.train, self.test):  # values only when present: old fingerprints stay valid
            if x.values is not None:
                h.update(b"values" + np.ascontiguousarray(x.values, dtype=np.float64).tobytes())
        if self.kg is not None:
            for a in (self.kg.heads, self.kg.relations, self.kg.tails):
                h.update(np.ascontiguousarray(a).tobytes())
        h.update(f"{self.n_users},{self.n_items}".encode())
        return h.hexdigest()[:16]
