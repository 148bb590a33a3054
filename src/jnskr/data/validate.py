"""Dataset validation: invariant checks, statistics and warnings.

Readers build a `Dataset`, put reader-specific counts (duplicates removed, kg_feat
multiplicities, ...) into ``ds.stats`` and call `finish`.  `finish` checks the in-memory
contract (raising `DataError` when it is broken), removes duplicate KG triples, computes the
statistics, turns every non-zero problem count into a warning string in ``ds.warnings`` and logs
those warnings on the ``jnskr`` logger.

Problems that are *warnings* (the data is usable): duplicates removed, KG self-loops, users
without train items, cold test items (never in train), items without KG facts, test pairs that
are also train pairs (kept as they are), files in the folder that no reader reads.  Problems
that are *errors* (`DataError`) are raised by the readers while parsing (malformed lines,
negative or too large ids, missing/empty/binary files, bad atomic-file headers) or here (arrays
that break the contract, no training interaction at all).

`finish` does not log by default: `jnskr.data.registry.load_dataset` logs a dataset's warnings
once, and ``jnskr data validate`` prints them instead.
"""

from __future__ import annotations

import logging

import numpy as np

from jnskr.data.arrays import Interactions, KnowledgeGraph
from jnskr.data.parse import list_folder
from jnskr.errors import DataError

log = logging.getLogger("jnskr")

#: stats key -> warning template (``{n}`` is the count); only non-zero counts warn
WARNINGS: dict[str, str] = {
    "duplicate_train_items": "{n} duplicate train items removed (same item twice for a user)",
    "duplicate_test_items": "{n} duplicate test items removed (same item twice for a user)",
    "duplicate_triples": "{n} duplicate KG triples removed",
    "kg_self_loops": "{n} KG self-loops (head == tail)",
    "users_without_train": "{n} users have no train items",
    "cold_test_items": "{n} test items never occur in train (cold items)",
    "items_without_kg": "{n} items have no KG facts",
    "test_in_train": "{n} test pairs are also train pairs (kept)",
}

#: statistics shown by `validate_dataset` / `jnskr data validate`, in order, with labels
TABLE: dict[str, str] = {
    "users": "users",
    "items": "items",
    "train_pairs": "train pairs",
    "test_pairs": "test pairs",
    "test_users": "test users",
    "density": "density (train+test)",
    "kg_triples": "KG triples",
    "entities": "entities",
    "relations": "relations",
    "items_with_kg": "items with KG facts",
    "kg_heads": "distinct KG heads",
    "kg_heads_items": "KG heads that are items",
    "duplicate_train_items": "duplicate train items removed",
    "duplicate_test_items": "duplicate test items removed",
    "duplicate_triples": "duplicate triples removed",
    "kg_self_loops": "KG self-loops",
    "users_without_train": "users without train items",
    "cold_test_items": "cold test items",
    "items_without_kg": "items without KG facts",
    "test_in_train": "test pairs also in train",
}


def check_interactions(x: Interactions, n_users: int, n_items: int, what: str) -> None:
    """Raise `DataError` unless ``x`` is a valid CSR (sorted unique items per user, ids in range)."""
    ip, ind = np.asarray(x.indptr), np.asarray(x.indices)
    if len(ip) != n_users + 1 or ip[0] != 0 or ip[-1] != len(ind) or np.any(np.diff(ip) < 0):
        raise DataError(f"{what}: malformed CSR indptr")
    if x.n_items != n_items:
        raise DataError(f"{what}: n_items {x.n_items} != dataset n_items {n_items}")
    if len(ind) and (ind.min() < 0 or ind.max() >= n_items):
        raise DataError(f"{what}: item id out of range 0..{n_items - 1}")
    if len(ind) > 1:
        step = np.diff(ind)
        row_start = np.zeros(len(ind), dtype=bool)
        row_start[ip[:-1][ip[:-1] < len(ind)]] = True
        if np.any((step <= 0) & ~row_start[1:]):
            raise DataError(f"{what}: items not sorted and unique within a user")
    if x.values is not None:
        v = np.asarray(x.values)
        if v.shape != ind.shape or not np.issubdtype(v.dtype, np.floating):
            raise DataError(f"{what}: values must be a float array aligned with indices")
        if not np.all(np.isfinite(v)):
            raise DataError(f"{what}: values must be finite")


def check_kg(kg: KnowledgeGraph, n_items: int) -> None:
    """Raise `DataError` unless the KG's ids are in range and items are entities."""
    if kg.n_entities < n_items:
        raise DataError(f"KG: {kg.n_entities} entities < {n_items} items (item i must be entity i)")
    if not (len(kg.heads) == len(kg.relations) == len(kg.tails)):
        raise DataError("KG: heads, relations and tails differ in length")
    for name, arr, hi in (("head", kg.heads, kg.n_entities), ("tail", kg.tails, kg.n_entities),
                          ("relation", kg.relations, kg.n_relations)):
        if len(arr) and (arr.min() < 0 or arr.max() >= hi):
            raise DataError(f"KG: {name} id out of range 0..{hi - 1}")


def dedupe_triples(kg: KnowledgeGraph) -> int:
    """Drop exact duplicate triples in place, keeping first occurrences in file order."""
    n = kg.n_triples
    if n < 2:
        return 0
    n_ent, n_rel = max(kg.n_entities, 1), max(kg.n_relations, 1)
    dup = np.zeros(n, dtype=bool)
    if n_ent * n_ent * n_rel < 2**62:  # one packed int64 key: a stable argsort is fast
        key = (kg.heads * n_rel + kg.relations) * n_ent + kg.tails
        order = np.argsort(key, kind="stable")
        ks = key[order]
        dup[1:] = ks[1:] == ks[:-1]
    else:
        order = np.lexsort((np.arange(n), kg.tails, kg.relations, kg.heads))
        h, r, t = kg.heads[order], kg.relations[order], kg.tails[order]
        dup[1:] = (h[1:] == h[:-1]) & (r[1:] == r[:-1]) & (t[1:] == t[:-1])
    n_dup = int(dup.sum())
    if n_dup:
        keep = np.sort(order[~dup])
        kg.heads, kg.relations, kg.tails = kg.heads[keep], kg.relations[keep], kg.tails[keep]
    return n_dup


def _pair_keys(x: Interactions) -> np.ndarray:
    """Sorted int64 keys user * n_items + item (sorted because the CSR rows are)."""
    u, i = x.pairs()
    return u * np.int64(max(x.n_items, 1)) + i


def compute_stats(ds: "Dataset") -> dict:  # noqa: F821 (jnskr.data.dataset.Dataset)
    """The statistics table of ``ds`` (reader counts already in ``ds.stats`` are kept)."""
    s = dict(ds.stats)
    tr, te = ds.train, ds.test
    s["users"] = ds.n_users
    s["items"] = ds.n_items
    s["train_pairs"] = tr.nnz
    s["test_pairs"] = te.nnz
    s["test_users"] = int(np.count_nonzero(te.user_counts()))
    cells = ds.n_users * ds.n_items
    s["density"] = float((tr.nnz + te.nnz) / cells) if cells else 0.0
    kg = ds.kg
    s["kg_triples"] = kg.n_triples if kg is not None else 0
    s["entities"] = kg.n_entities if kg is not None else 0
    s["relations"] = kg.n_relations if kg is not None else 0
    for k in ("duplicate_train_items", "duplicate_test_items", "duplicate_triples"):
        s.setdefault(k, 0)
    s["kg_self_loops"] = int(np.count_nonzero(kg.heads == kg.tails)) if kg is not None else 0
    s["users_without_train"] = int(np.count_nonzero(tr.user_counts() == 0))
    in_train = tr.item_counts() > 0
    test_items = te.item_counts() > 0
    s["cold_test_items"] = int(np.count_nonzero(test_items & ~in_train))
    if kg is not None:
        has_fact = np.zeros(ds.n_items, dtype=bool)
        for ends in (kg.heads, kg.tails):
            e = ends[ends < ds.n_items]
            has_fact[e] = True
        s["items_without_kg"] = int(np.count_nonzero(~has_fact))
        s["items_with_kg"] = ds.n_items - s["items_without_kg"]
        heads = np.unique(kg.heads)
        s["kg_heads"] = int(len(heads))
        s["kg_heads_items"] = int(np.count_nonzero(heads < ds.n_items))
    else:
        s["items_without_kg"] = 0
    tr_keys, te_keys = _pair_keys(tr), _pair_keys(te)
    if len(tr_keys) and len(te_keys):
        pos = np.searchsorted(tr_keys, te_keys).clip(max=len(tr_keys) - 1)
        s["test_in_train"] = int(np.count_nonzero(tr_keys[pos] == te_keys))
    else:
        s["test_in_train"] = 0
    return s


def warning_lines(stats: dict) -> list[str]:
    """One warning string per non-zero problem count."""
    return [tpl.format(n=f"{stats[k]:,}") for k, tpl in WARNINGS.items() if stats.get(k, 0)]


def coverage_line(stats: dict) -> str:
    """How far the KG reaches the items, in words (printed by ``jnskr data validate``)."""
    if not stats.get("kg_triples"):
        return "KG coverage: no KG"
    items, with_kg = stats["items"], stats.get("items_with_kg", 0)
    heads, head_items = stats.get("kg_heads", 0), stats.get("kg_heads_items", 0)
    pct = lambda a, b: f"{100 * a / b:.1f}%" if b else "-"  # noqa: E731
    return (f"KG coverage: {with_kg:,} of {items:,} items have KG facts ({pct(with_kg, items)}); "
            f"{head_items:,} of {heads:,} distinct KG heads are items ({pct(head_items, heads)})")


def unread_files(folder, read: set[str]) -> list[str]:
    """One warning per entry of ``folder`` (a path) whose name is not in ``read``."""
    return [f"file not read: {n} (not a file of this format; see docs/data.md)"
            for n in list_folder(folder) if n not in read]


def finish(ds: "Dataset", *, log_warnings: bool = False, source: str | None = None) -> "Dataset":  # noqa: F821
    """Check ``ds``, drop duplicate triples, fill ``ds.stats`` and ``ds.warnings``; return ``ds``.

    A dataset without a single training interaction is a `DataError` (at ``source`` when given).
    """
    if ds.train.nnz == 0:
        raise DataError("no training interactions (nothing to learn from)", source or ds.name)
    check_interactions(ds.train, ds.n_users, ds.n_items, "train")
    check_interactions(ds.test, ds.n_users, ds.n_items, "test")
    if ds.kg is not None:
        check_kg(ds.kg, ds.n_items)
        ds.stats["duplicate_triples"] = ds.stats.get("duplicate_triples", 0) + dedupe_triples(ds.kg)
    ds.stats = compute_stats(ds)
    extra = [w for w in ds.warnings if w not in warning_lines(ds.stats)]
    ds.warnings = extra + warning_lines(ds.stats)
    if log_warnings:
        for w in ds.warnings:
            log.warning("%s: %s", ds.name, w)
    return ds


def validate_dataset(ds: "Dataset") -> dict:  # noqa: F821
    """Re-check ``ds`` and return its statistics table (`TABLE` keys first, then the rest)."""
    check_interactions(ds.train, ds.n_users, ds.n_items, "train")
    check_interactions(ds.test, ds.n_users, ds.n_items, "test")
    if ds.kg is not None:
        check_kg(ds.kg, ds.n_items)
    s = compute_stats(ds)
    out = {k: s[k] for k in TABLE if k in s}
    out.update({k: v for k, v in s.items() if k not in out})
    return out
