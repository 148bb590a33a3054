"""JNSKR's exact explanations: a score split into its base part and one part per KG fact.

JNSKR scores ŷ_uv = hᵀ(p_u ∘ q_v) with q_v = e_v + Σ_{(r,t)∈𝒩(v)} α_v(r,t) x_t, so the score is a
sum of one *base* part and one part per KG fact of v:

    ŷ_uv = hᵀ(p_u ∘ e_v)  +  Σ_{(r,t)∈𝒩(v)} α_v(r,t) · hᵀ(p_u ∘ x_t)
           └── base ──┘       └──────── contribution of fact (r, t) ────────┘

`FactTable` (what `JNSKR.explainer` returns) holds the item catalogue's neighbour lists (the run's
items, plus any cold-start items added at inference time, see `jnskr.coldstart`), computes every α
once and builds the item vectors, all in float64 so that base + Σ contributions equals the score to
~1e-12.  `FactTable.explain(p, items)` returns a `jnskr.explain.FactBreakdown` per (user vector,
item) pair: the base part, the score and the facts ranked by |contribution|; the facts not shown
are summed in ``rest`` so that ``base + Σ shown + rest == score`` for every row.

The neighbourhood is the one the model scores with (capped by ``jnskr.max_neighbors`` when set), so
explanations match `Recommender.score` exactly (up to float32 rounding there).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from jnskr.explain import FactBreakdown
from jnskr.ops import csr_gather, segment_softmax


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
