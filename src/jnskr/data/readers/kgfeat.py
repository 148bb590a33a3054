"""`kg_feat.npz`: the item x entity count matrix that JNSKR's repository ships instead of a KG.

The file is a scipy CSR matrix saved with ``scipy.sparse.save_npz``; it is read here with plain
numpy (``indptr``, ``indices``, ``data``, ``shape``, ``format``), so scipy is not needed.

Row i is the one-hot vector of item i plus, for every KG triple (i, r, t), a count on column t.
Decisions (relation ids are lost in this file):

* The diagonal entry with count 1 is the identity, **not** a fact.  A diagonal count c > 1
  means c - 1 real self-links; one triple (i, linked, i) is emitted.
* An off-diagonal count c means the same (item, tail) pair under c different relations.  The
  relations cannot be recovered, and emitting c copies would only create duplicate triples, so
  the pair is emitted **once** as (i, 0, t) with relation 0 named ``linked``.  The lost
  multiplicity is recorded in the stats (``kg_feat_facts`` = all facts the counts stand for,
  ``kg_feat_multi_links`` = links with count > 1).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from jnskr.data.dataset import KnowledgeGraph
from jnskr.errors import DataError

LINKED = "linked"


def read_kg_feat(path: Path, n_items: int) -> tuple[KnowledgeGraph, dict, int]:
    """Read ``kg_feat.npz`` into a one-relation KG.

    Returns ``(kg, stats, n_rows)`` where ``n_rows`` is the matrix's row count (its item count);
    the KG has ``max(shape[1], n_items, n_rows)`` entities.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            fmt = z["format"].item()
            fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
            if fmt != "csr":
                raise DataError(f"sparse format {fmt!r} is not supported (expected 'csr')", str(path))
            indptr = z["indptr"].astype(np.int64)
            indices = z["indices"].astype(np.int64)
            data = z["data"]
            shape = tuple(int(v) for v in z["shape"])
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError("missing file", str(path)) from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise DataError(f"not a scipy CSR .npz file ({type(exc).__name__}: {exc})", str(path)) from None
    n_rows, n_cols = shape
    if len(indptr) != n_rows + 1 or indptr[-1] != len(indices) or len(data) != len(indices):
        raise DataError("inconsistent CSR arrays (indptr/indices/data/shape)", str(path))
    if len(indices) and (indices.min() < 0 or indices.max() >= n_cols):
        raise DataError("column index out of range", str(path))
    if n_cols < n_rows:
        raise DataError(f"shape {shape}: fewer entity columns than item rows", str(path))
    counts = np.rint(data).astype(np.int64)
    if np.any(counts < 0) or np.any(np.abs(data - counts) > 1e-9):
        raise DataError("counts must be non-negative integers", str(path))
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr))
    diag = indices == rows
    facts = np.where(diag, counts - 1, counts).clip(min=0)
    keep = facts > 0
    kg = KnowledgeGraph(
        heads=rows[keep],
        relations=np.zeros(int(keep.sum()), dtype=np.int64),
        tails=indices[keep],
        n_entities=max(n_cols, n_items, n_rows),
        n_relations=1,
        relation_names=np.array([LINKED]),
    )
    stats = {
        "kg_feat_entries": int(len(indices)),
        "kg_feat_identity": int(np.count_nonzero(diag & (counts >= 1))),
        "kg_feat_self_links": int(facts[diag].sum()),
        "kg_feat_facts": int(facts.sum()),
        "kg_feat_multi_links": int(np.count_nonzero(facts > 1)),
    }
    return kg, stats, n_rows
