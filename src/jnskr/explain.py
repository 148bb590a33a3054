"""Exact explanations of JNSKR scores by their KG facts.

JNSKR scores ŷ_uv = hᵀ(p_u ∘ q_v) with q_v = e_v + Σ_{(r,t)∈𝒩(v)} α_v(r,t) x_t, so the score is a
sum of one *base* part and one part per KG fact of v:

    ŷ_uv = hᵀ(p_u ∘ e_v)  +  Σ_{(r,t)∈𝒩(v)} α_v(r,t) · hᵀ(p_u ∘ x_t)
           └── base ──┘       └──────── contribution of fact (r, t) ────────┘

`FactTable` holds the item catalogue's neighbour lists (the run's items, plus any cold-start
items added at inference time, see `jnskr.coldstart`), computes every α once and builds the
item vectors, all in float64 so that base + Σ contributions equals the score to ~1e-12.
`FactTable.explain(p, items)` returns, per (user vector, item) pair, the base part, the score
and the facts ranked by |contribution|; the facts not shown are summed in ``rest`` so that
``base + Σ shown + rest == score`` for every row.

The neighbourhood is the one the model scores with (capped by ``jnskr.max_neighbors`` when
set), so explanations match `Recommender.score` exactly (up to float32 rounding there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from jnskr.ops import csr_gather, segment_softmax


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


class FactTable:
    """Neighbour lists, attention and item vectors of an item catalogue, in float64.

    ``extra`` appends cold-start items: ``(indptr [n_new+1], relations, tails)`` over the run's
    relation and tail vocabularies; their base vector e_v is 0.
    """

    def __init__(self, model, extra: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None):
        """`model`: a model with KG facts (its ``nb_indptr``/``nb_rel``/``nb_tail`` neighbour
        lists, ``item_emb``, ``h``, ``tails()`` and ``fact_logits``); built by `Model.explainer`."""
        dev = model.device
        self.model = model
        ip, rel, tail = model.nb_indptr, model.nb_rel, model.nb_tail
        base = model.item_emb.detach().double()
        if extra is not None and len(extra[0]) > 1:
            e_ip, e_rel, e_tail = (torch.as_tensor(np.asarray(a), dtype=torch.long, device=dev) for a in extra)
            ip = torch.cat([ip, ip[-1] + e_ip[1:]])
            rel = torch.cat([rel, e_rel])
            tail = torch.cat([tail, e_tail])
            base = torch.cat([base, torch.zeros(len(e_ip) - 1, base.shape[1], dtype=base.dtype, device=dev)])
        self.indptr, self.rel, self.tail = ip, rel, tail
        self.n_items = len(ip) - 1
        self.base = base  # [N', d] e_v (0 for cold-start items)
        self.h = model.h.detach().double()
        with torch.no_grad():
            self.x = model.tails().detach().double()  # [T, d]
            seg = torch.repeat_interleave(torch.arange(self.n_items, device=dev), ip[1:] - ip[:-1])
            self.alpha = segment_softmax(model.fact_logits(rel, tail), seg, self.n_items)
            self.q = base.index_add(0, seg, self.alpha.unsqueeze(1) * self.x[tail])  # [N', d]

    def item_vectors(self) -> Tensor:
        """q_v = e_v + m_v for the whole catalogue (float64).  -> [N', d]."""
        return self.q

    @torch.no_grad()
    def explain(self, p: Tensor, items: Tensor, top: int | None = 5) -> FactBreakdown:
        """Decompose hᵀ(p_i ∘ q_{items_i}) for each row i.

        p: [n, d] user vectors (any float dtype; computed in float64); items: [n] catalogue
        indices.  ``top``: facts listed per row (None: all of them).
        """
        dev = self.q.device
        p = p.to(dev).double()
        items = items.to(dev).long()
        ph = p * self.h  # [n, d]
        base = (ph * self.base[items]).sum(1)
        score = (ph * self.q[items]).sum(1)
        seg, pos = csr_gather(self.indptr, items)
        contrib = self.alpha[pos] * (ph[seg] * self.x[self.tail[pos]]).sum(1)
        n_facts = (self.indptr[items + 1] - self.indptr[items]).cpu().numpy()
        # sort within rows by |contribution| descending (two stable sorts)
        order = torch.argsort(-contrib.abs(), stable=True)
        order = order[torch.argsort(seg[order], stable=True)]
        seg_s = seg[order]
        if top is not None:
            counts = torch.bincount(seg_s, minlength=len(items))
            starts = torch.cumsum(counts, 0) - counts
            rank = torch.arange(len(seg_s), device=dev) - starts[seg_s]
            order = order[rank < top]
        shown = torch.zeros(len(items), dtype=torch.float64, device=dev).index_add(0, seg[order], contrib[order])
        total = torch.zeros(len(items), dtype=torch.float64, device=dev).index_add(0, seg, contrib)
        return FactBreakdown(
            base=base.cpu().numpy(), score=score.cpu().numpy(), kg=total.cpu().numpy(),
            rest=(total - shown).cpu().numpy(),
            n_facts=n_facts.astype(np.int64), fact_row=seg[order].cpu().numpy(),
            relation=self.rel[pos[order]].cpu().numpy(), tail=self.tail[pos[order]].cpu().numpy(),
            alpha=self.alpha[pos[order]].cpu().numpy(), contribution=contrib[order].cpu().numpy(),
        )


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
