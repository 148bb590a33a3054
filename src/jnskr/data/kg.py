"""The item-centric KG of JNSKR (docs/spec.md §1.2), built from a raw KG.

Steps, as the original `kg_data_process.py` (options in brackets):

1. add the reversed triple (t, r, h) of every triple, with the same relation id
   [`inverse_relations="separate"`: relation r + R instead];
2. drop exact duplicates, keeping the first occurrence (all originals before all reversed);
3. keep triples whose head is an item [`kg_heads="trained_items"`: an item with at least one
   training interaction, as the paper; default `"all_items"` keeps every item's facts, so
   cold items still get a knowledge-aware vector];
4. re-index relations 0..R-1 and tails 0..T-1 in order of first appearance.

The result is a per-item CSR of (relation, tail) neighbours in that order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jnskr.data.dataset import KnowledgeGraph


@dataclass
class ItemKG:
    """Per-item neighbour lists over a re-indexed relation/tail vocabulary."""

    indptr: np.ndarray  # int64 [n_items + 1]
    relations: np.ndarray  # int64 [n_facts]  0..n_relations-1
    tails: np.ndarray  # int64 [n_facts]  0..n_tails-1
    n_relations: int
    n_tails: int
    tail_entity: np.ndarray  # int64 [n_tails] raw-KG entity id of each tail
    relation_source: np.ndarray  # int64 [n_relations] raw relation id (inverse: id + R_raw)
    relation_names: list[str]

    @property
    def n_items(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_facts(self) -> int:
        return int(self.indptr[-1])

    def degrees(self) -> np.ndarray:
        return np.diff(self.indptr)

    def heads(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_items, dtype=np.int64), self.degrees())


def _first_appearance_ids(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Re-index values by order of first appearance.  -> (new ids [len(x)], values in new order)."""
    uniq, first, inv = np.unique(x, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq), dtype=np.int64)
    return rank[inv.reshape(-1)], uniq[order]


def _dedupe_keep_first(h: np.ndarray, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct (h, r, t), in original order."""
    n_e = int(max(h.max(initial=0), t.max(initial=0))) + 1
    n_r = int(r.max(initial=0)) + 1
    if n_e * n_e * n_r < 2**62:
        key = (h * n_r + r) * n_e + t
        _, first = np.unique(key, return_index=True)
    else:  # ids too large for a packed key
        _, first = np.unique(np.stack([h, r, t], 1), axis=0, return_index=True)
    return np.sort(first)


def build_item_kg(
    kg: KnowledgeGraph,
    n_items: int,
    train_item_counts: np.ndarray | None = None,
    kg_heads: str = "all_items",
    inverse_relations: str = "shared",
) -> ItemKG:
    """Build the item-centric KG.  See the module docstring for the steps and options."""
    if kg_heads not in ("all_items", "trained_items"):
        raise ValueError(f"kg_heads must be all_items or trained_items, not {kg_heads!r}")
    if inverse_relations not in ("shared", "separate"):
        raise ValueError(f"inverse_relations must be shared or separate, not {inverse_relations!r}")
    h0 = np.asarray(kg.heads, dtype=np.int64)
    r0 = np.asarray(kg.relations, dtype=np.int64)
    t0 = np.asarray(kg.tails, dtype=np.int64)
    r_rev = r0 + kg.n_relations if inverse_relations == "separate" else r0
    h = np.concatenate([h0, t0])
    r = np.concatenate([r0, r_rev])
    t = np.concatenate([t0, h0])
    keep = _dedupe_keep_first(h, r, t) if len(h) else np.zeros(0, dtype=np.int64)
    h, r, t = h[keep], r[keep], t[keep]
    is_head = h < n_items
    if kg_heads == "trained_items":
        if train_item_counts is None:
            raise ValueError("kg_heads='trained_items' needs train_item_counts")
        is_head &= np.asarray(train_item_counts)[np.minimum(h, n_items - 1)] > 0
    h, r, t = h[is_head], r[is_head], t[is_head]
    rel_new, rel_src = _first_appearance_ids(r)
    tail_new, tail_ent = _first_appearance_ids(t)
    order = np.argsort(h, kind="stable")  # per-item lists keep file order
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(np.bincount(h, minlength=n_items), out=indptr[1:])
    names_raw = kg.relation_names
    names = []
    for src in rel_src.tolist():
        base = src % kg.n_relations if kg.n_relations else src
        nm = str(names_raw[base]) if names_raw is not None and base < len(names_raw) else f"r{base}"
        names.append(nm + ("^-1" if src >= kg.n_relations else ""))
    return ItemKG(
        indptr=indptr,
        relations=rel_new[order].astype(np.int64),
        tails=tail_new[order].astype(np.int64),
        n_relations=len(rel_src),
        n_tails=len(tail_ent),
        tail_entity=tail_ent.astype(np.int64),
        relation_source=rel_src.astype(np.int64),
        relation_names=names,
    )


def cap_neighbors(item_kg: ItemKG, max_neighbors: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The attention neighbourhood: the first `max_neighbors` facts of each item (all when None).

    -> (indptr [n_items+1], relations, tails).  The KG loss always sees every fact.
    """
    if max_neighbors is None:
        return item_kg.indptr, item_kg.relations, item_kg.tails
    deg = item_kg.degrees()
    pos = np.arange(item_kg.n_facts) - np.repeat(item_kg.indptr[:-1], deg)
    keep = pos < max_neighbors
    new_deg = np.minimum(deg, max_neighbors)
    indptr = np.zeros_like(item_kg.indptr)
    np.cumsum(new_deg, out=indptr[1:])
    return indptr, item_kg.relations[keep], item_kg.tails[keep]
