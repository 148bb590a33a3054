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

The arrays are checked before use: ``shape`` two non-negative integers, ``indptr`` integers
from 0 rising to ``len(indices)``, ``indices`` integers in range, ``data`` finite non-negative
integral numbers; the sizes pass the memory check before anything of that size is built.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

from jnskr.data.arrays import KnowledgeGraph
from jnskr.data.memory import check_memory
from jnskr.data.parse import check_file
from jnskr.errors import DataError

LINKED = "linked"
_KEYS = ("format", "indptr", "indices", "data", "shape")


def _load(path: Path) -> dict[str, np.ndarray]:
    check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy's own warnings on odd members; errors follow
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in _KEYS if k not in z.files]
                if missing:
                    raise DataError(f"not a scipy CSR .npz file (no {', '.join(missing)})", str(path))
                return {k: z[k] for k in _KEYS}
    except DataError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, TypeError) as exc:
        raise DataError(f"not a scipy CSR .npz file ({type(exc).__name__}: {str(exc)[:80]})", str(path)) from None


def _ints(a: np.ndarray, what: str, path: Path) -> np.ndarray:
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise DataError(f"{what} must be a 1-D integer array (got {a.dtype} of shape {a.shape})", str(path))
    return a.astype(np.int64)


def read_kg_feat(path: Path, n_items: int, max_memory: float | None = None) -> tuple[KnowledgeGraph, dict, int]:
    """Read ``kg_feat.npz`` into a one-relation KG.

    Returns ``(kg, stats, n_rows)`` where ``n_rows`` is the matrix's row count (its item count);
    the KG has ``max(shape[1], n_items, n_rows)`` entities.
    """
    path = Path(path)
    z = _load(path)
    fmt = z["format"]
    fmt = fmt.item() if fmt.ndim == 0 and (np.issubdtype(fmt.dtype, np.str_) or np.issubdtype(fmt.dtype, np.bytes_)) else None
    fmt = fmt.decode(errors="replace") if isinstance(fmt, bytes) else fmt
    if fmt != "csr":
        raise DataError(f"sparse format {fmt!r} is not supported (expected 'csr')", str(path))
    shape = z["shape"]
    if shape.ndim != 1 or len(shape) != 2 or not np.issubdtype(shape.dtype, np.integer) or np.any(shape < 0):
        raise DataError(f"shape must be two non-negative integers (rows, columns), got {shape.tolist()!r}", str(path))
    n_rows, n_cols = int(shape[0]), int(shape[1])
    indptr, indices = _ints(z["indptr"], "indptr", path), _ints(z["indices"], "indices", path)
    data = z["data"]
    if data.ndim != 1 or not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)
                               or data.dtype == bool):
        raise DataError(f"data must be a 1-D array of numbers (got {data.dtype} of shape {data.shape})", str(path))
    if len(indptr) != n_rows + 1 or len(data) != len(indices):
        raise DataError("inconsistent CSR arrays (indptr/indices/data/shape)", str(path))
    if indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0):
        raise DataError("indptr must rise from 0 to the number of entries", str(path))
    if len(indices) and (indices.min() < 0 or indices.max() >= n_cols):
        raise DataError("column index out of range", str(path))
    if n_cols < n_rows:
        raise DataError(f"shape {(n_rows, n_cols)}: fewer entity columns than item rows", str(path))
    check_memory(path, None, f"shape ({n_rows}, {n_cols})",
                 dict(n_users=0, n_items=max(n_rows, n_items), n_entities=max(n_cols, n_items),
                      n_triples=len(indices)), max_memory)
    data = data.astype(np.float64)
    if not np.all(np.isfinite(data)) or np.any(np.abs(data) > 2.0**53):
        raise DataError("counts must be finite numbers below 2**53", str(path))
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
