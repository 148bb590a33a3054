"""The validated in-memory dataset every reader produces.

Everything is dense integer ids and flat numpy arrays: no Python object per interaction.

* Users are 0..n_users-1, items 0..n_items-1.  Interactions are CSR matrices over users
  (`indptr[u]:indptr[u+1]` slices `indices`, items sorted ascending and unique per user).
* The KG, when present, is a list of (head, relation, tail) triples over *entities*
  0..n_entities-1, where entity i (< n_items) is item i (the KGAT convention).  Relations are
  0..n_relations-1.  It is the raw KG: the item-centric preprocessing of the spec (§1.2) is
  `jnskr.data.kg.build_item_kg`.
* Raw ids (the dataset's original ids, as strings) and optional names live in numpy string
  arrays indexed by the dense id.  ``user_ids`` and ``item_ids`` are always arrays: where the
  data names no raw ids (a KGAT folder without ``user_list.txt`` / ``item_list.txt``), the raw
  id is the integer id as a string.
* ``Interactions.values`` (optional, float64, aligned with ``indices``): per-pair confidence
  weights when the data's weight column is used as confidence (``data.weight: confidence``);
  the training side uses them as per-pair positive weights.  ``None``: every pair weighs 1.
* ``Dataset.provenance``: how the dataset was made, JSON-ready, for the run to record:
  ``format``, ``split`` (``{"method": "given" | "ratio" | "leave_one_out" | "time", ...}``),
  ``kg_ids`` (``"links"``, ``"items"`` or, for KGAT folders, ``"kgat"``), ``weight``
  (``{"use": "ignore" | "threshold" | "confidence", ...}``), ``files`` (the files read).

`Dataset.from_frames` (pandas) and `Dataset.from_csr` (scipy.sparse) build one in memory; see
`jnskr.data.frames`.  `Dataset.to_scipy` gives a split back as a scipy.sparse CSR matrix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from jnskr.data.arrays import Interactions, KnowledgeGraph
from jnskr.data.frames import _require, from_csr, from_frames
from jnskr.errors import JnskrError

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
    user_ids: np.ndarray = None  # str [n_users] raw user ids (None given: "0", "1", ...)
    item_ids: np.ndarray = None  # str [n_items] raw item ids (None given: "0", "1", ...)
    item_names: np.ndarray | None = None  # str [n_items] titles, when the data has them
    source_hash: str = ""  # fingerprint of the source files (cache key)
    stats: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)  # format, split, kg_ids, weight, files (JSON-ready)

    from_frames = classmethod(from_frames)
    from_csr = classmethod(from_csr)

    def __post_init__(self) -> None:
        if self.user_ids is None:
            self.user_ids = np.arange(self.n_users).astype(str)
        if self.item_ids is None:
            self.item_ids = np.arange(self.n_items).astype(str)

    def to_scipy(self, split: str = "train", dtype=np.float32):
        """One split as a ``scipy.sparse.csr_matrix`` of shape [n_users, n_items] (`dtype`,
        float32 by default: what ALS libraries such as implicit take).

        `split`: ``"train"`` (the default: every training pair, the pairs `fit` holds out for
        validation included, since that split is drawn inside the pipeline) or ``"test"``.  Row u
        is dense user u (raw id ``user_ids[u]``), column i dense item i (``item_ids[i]``).  Values:
        the per-pair confidence weights where the dataset has them (``data.weight: confidence``;
        `Interactions.values`), else 1 for every pair."""
        if split not in ("train", "test"):
            raise JnskrError(f"Dataset.to_scipy: split must be 'train' or 'test', not {split!r}")
        sp = _require("scipy.sparse", "scipy", "Dataset.to_scipy")
        x = getattr(self, split)
        values = np.ones(x.nnz, dtype=dtype) if x.values is None else np.asarray(x.values, dtype=dtype)
        return sp.csr_matrix((values, x.indices.copy(), x.indptr.copy()), shape=(self.n_users, self.n_items))

    def __repr__(self) -> str:
        kg = f", {self.kg.n_triples} KG triples" if self.kg is not None else ", no KG"
        return (f"Dataset({self.name!r}: {self.n_users} users, {self.n_items} items, "
                f"{self.train.nnz} train / {self.test.nnz} test pairs{kg})")

    @property
    def has_kg(self) -> bool:
        return self.kg is not None and self.kg.n_triples > 0

    def raw_user_id(self, u: int) -> str:
        return str(self.user_ids[u])

    def raw_item_id(self, i: int) -> str:
        return str(self.item_ids[i])

    def user_index(self) -> dict[str, int]:
        return {str(x): k for k, x in enumerate(self.user_ids)}

    def item_index(self) -> dict[str, int]:
        return {str(x): k for k, x in enumerate(self.item_ids)}

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
