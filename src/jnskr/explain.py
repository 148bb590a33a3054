"""Explanations of scores by KG facts, as callers see them: `FactBreakdown` (what a model's
explainer returns per (user, item) row: base part, score, the top facts and the rest), `Names`
(display names of items, relations and entities) and the JSON-ready `Explanation` rows.

A model that can explain builds the breakdown (`Model.explainer`; JNSKR's is
`jnskr.models.jnskr.explain.FactTable`, exact: ``base + Σ shown + rest == score`` for every row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FactBreakdown:
    """Explanations of n (user, item) pairs, as arrays.  Facts are flat arrays grouped by ``fact_row``
    (0..n-1), within a row sorted by |contribution| descending."""

    base: np.ndarray  # float64 [n]  hᵀ(p ∘ e_v)
    score: np.ndarray  # float64 [n]  hᵀ(p ∘ q_v)
    kg: np.ndarray  # float64 [n]  Σ contributions of all facts (score == base + kg)
    rest: np.ndarray  # float64 [n]  Σ contributions of the facts not listed
    n_facts: np.ndarray  # int64 [n]  |𝒩(v)|
    fact_row: np.ndarray  # int64 [f]
    relation: np.ndarray  # int64 [f] run relation index
    tail: np.ndarray  # int64 [f] run tail index
    alpha: np.ndarray  # float64 [f]
    contribution: np.ndarray  # float64 [f]

    def row_facts(self, i: int) -> slice:
        lo, hi = np.searchsorted(self.fact_row, [i, i + 1])
        return slice(int(lo), int(hi))


class Names:
    """Display names of a run's relations and tail entities (from id_maps.json).

    Relations have the dataset's names (``r<k>`` when it has none).  A tail entity is shown by
    its raw id; its name is the item title when the entity is an item with a title, else the
    dataset's entity name, else None (ml-100k's Freebase ids have no names).
    """

    def __init__(self, ids, tail_entity: np.ndarray | None):
        """`ids`: the run's `jnskr.ids.IdMaps`."""
        self.relations = list(ids.relation_names)
        self.tail_ids = list(ids.tail_entity_ids)
        names = ids.tail_entity_names
        item_names = ids.item_names
        n_items = ids.n_items
        tn: list[str | None] = [None] * len(self.tail_ids)
        if names:
            tn = [n or None for n in names]
        if item_names and tail_entity is not None:
            for k, e in enumerate(np.asarray(tail_entity).tolist()):
                if e < n_items and item_names[e]:
                    tn[k] = item_names[e]
        self.tail_names = tn
        self.any_named = any(n is not None for n in tn)

    def relation(self, r: int) -> str:
        return self.relations[r] if r < len(self.relations) else f"r{r}"

    def entity(self, t: int) -> str:
        return self.tail_ids[t] if t < len(self.tail_ids) else str(t)

    def entity_name(self, t: int) -> str | None:
        return self.tail_names[t] if t < len(self.tail_names) else None


@dataclass
class Fact:
    """One KG fact (r, t) of an item and its share of a score."""

    relation: str
    entity: str  # raw entity id
    entity_name: str | None
    attention: float  # α_v(r, t)
    contribution: float  # α_v(r, t) · hᵀ(p_u ∘ x_t)


@dataclass
class Explanation:
    """An exact decomposition of one score: ``base + Σ f.contribution for f in facts + rest ==
    score`` (float64, up to rounding), `rest` summing the facts not listed (0 when all are)."""

    user: str
    item: str
    score: float
    base: float  # hᵀ(p_u ∘ e_v)
    facts: list[Fact]
    rest: float
    n_facts: int  # |𝒩(v)|


def explanations(ex: FactBreakdown, names: Names, users: list[str], items: list[str]) -> list[Explanation]:
    """`Explanation` objects of the rows of a breakdown."""
    out = []
    for i, row in enumerate(explanation_rows(ex, names)):
        facts = [Fact(f["relation"], f["entity"], f["entity_name"], f["alpha"], f["contribution"]) for f in row["facts"]]
        out.append(Explanation(users[i], items[i], row["score"], row["base"], facts, row["rest"], row["n_facts"]))
    return out


def explanation_rows(ex: FactBreakdown, names: Names) -> list[dict]:
    """One JSON-ready dict per explained pair: base, kg (Σ all contributions), score, facts
    (relation, entity, entity_name, alpha, contribution), rest, n_facts."""
    out = []
    for i in range(len(ex.base)):
        sl = ex.row_facts(i)
        facts = []
        for r, t, a, c in zip(ex.relation[sl].tolist(), ex.tail[sl].tolist(), ex.alpha[sl].tolist(),
                              ex.contribution[sl].tolist()):
            facts.append({"relation": names.relation(r), "entity": names.entity(t),
                          "entity_name": names.entity_name(t), "alpha": a, "contribution": c})
        out.append({
            "score": float(ex.score[i]), "base": float(ex.base[i]), "kg": float(ex.kg[i]),
            "n_facts": int(ex.n_facts[i]), "facts": facts, "rest": float(ex.rest[i]),
        })
    return out
