"""JNSKR's training objective: κ·L̃_CF + μ·L̃_KG over an item batch (docs/spec.md §3.4).

The CF part is the MF family's whole-data loss (`jnskr.models.mf.objective.cf_batch_loss`) on the
items' vectors with messages; the KG part is the non-sampling DistMult loss of `jnskr.losses`
(positive term plus the all-pairs term through Gram matrices).  The objective reads the model
through its batch forward (`JNSKR.batch_forward`) and the strategy's row access.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from jnskr.losses import kg_allpairs_term, l2_sum, positive_term
from jnskr.losses.gram import gram, weighted_gram
from jnskr.models.mf.objective import LOCAL, cf_batch_loss, config_ridges, device_tensor, pair_weights, ridge_share
from jnskr.ops import csr_gather
from jnskr.training.dropout import EpochMasks
from jnskr.training.weights import cf_negative_weights, kg_negative_weights, scalar_positive_weight


@dataclass
class KGFacts:
    """The KG-loss facts of an item batch, gathered by the objective (CSR order)."""

    seg: Tensor  # [n] batch row of each fact
    ptr: Tensor  # [B+1]
    rel: Tensor  # [n] relation ids
    tail: Tensor  # [n] tail ids
    w_neg: Tensor  # [n] w⁻ of each fact's head
    w_pos: float


@dataclass
class BatchForward:
    """What the losses of an item batch read from the model's batch forward (docs/spec.md §2.4, §3)."""

    q: Tensor  # [B, d] q̃_B (CF path, after dropout in train mode)
    e_kg: Tensor  # [B, d] ẽ_B (KG path, its own dropout)
    x: Tensor | None = None  # [n, d] tail rows of the facts
    z: Tensor | None = None  # [n, d] relation rows of the facts
    tail_gram: Tensor | None = None  # XᵀX when built with the rows (else the loss builds it)
    rel_gram: Tensor | None = None  # ZᵀZ
    kg_positive: Tensor | None = None  # the KG positive term, when a fused kernel computed it


class JNSKRObjective:
    """κ·L̃_CF + μ·L̃_KG over an item batch; the L2 term ½λ_emb‖tables‖² + ½λ_att‖attention‖²
    (docs/spec.md §3.4, whole tables at every batch) enters as the optimiser's weight decay, which adds
    exactly its gradient λ·θ at every step without an autograd pass over the tables
    (`param_groups`); `l2()` gives its value for the log."""

    def __init__(self, model, train, item_kg, cfg, seed: int):
        self.model = model
        self.cfg = cfg
        self.seed = seed
        dev = model.device
        by_item = train.transpose()
        self.iu_indptr = device_tensor(by_item.indptr, dev)
        self.iu_users = device_tensor(by_item.indices, dev)
        self.iu_c_pos = pair_weights(by_item.values, cfg.c_pos, dev, model.h.dtype, cfg.alpha)  # None: one scalar
        self.c_pos_scalar = scalar_positive_weight(cfg.c_pos, cfg.alpha)
        counts = train.item_counts()
        self.c_neg_np = cf_negative_weights(counts, cfg.c0, cfg.beta)
        self.ridge = config_ridges(cfg, train, self.c_neg_np, model.h.dtype, dev)
        self.c_neg = device_tensor(self.c_neg_np, dev, torch.float32)
        self.has_kg = item_kg is not None and item_kg.n_facts > 0
        if self.has_kg:
            self.kg_indptr = device_tensor(item_kg.indptr, dev)
            self.kg_rel = device_tensor(item_kg.relations, dev)
            self.kg_tail = device_tensor(item_kg.tails, dev)
            self.w_neg_np = kg_negative_weights(item_kg.degrees(), counts, cfg.c1, cfg.beta, cfg.kg_neg_weight)
            self.w_neg = device_tensor(self.w_neg_np, dev, torch.float32)
        else:
            self.w_neg_np = np.zeros(train.n_items)
        self.n_units = train.n_items
        self.masks = EpochMasks(seed, train.n_items, cfg.embed_dim)

    def weight_summary(self) -> dict:
        out = {"c_neg_min": float(self.c_neg_np[self.c_neg_np > 0].min(initial=0.0)),
               "c_neg_max": float(self.c_neg_np.max(initial=0.0)), "c_neg_sum": float(self.c_neg_np.sum())}
        if self.has_kg:
            w = self.w_neg_np
            out.update(w_neg_min=float(w[w > 0].min(initial=0.0)), w_neg_max=float(w.max(initial=0.0)),
                       w_neg_sum=float(w.sum()))
        return out

    def item_inputs(self, items: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        """(q̃_B for the CF loss, ẽ_B for the KG loss), with dropout in train mode (docs/spec.md §2.4)."""
        fwd = self.model.batch_forward(items, epoch, self.masks, LOCAL, None)
        return fwd.q, fwd.e_kg

    def l2(self) -> Tensor:
        """½λ_emb‖tables‖² + ½λ_att‖attention‖² (the value; its gradient is weight decay)."""
        m = self.model
        out = self.cfg.lambda_emb * l2_sum(*m.embedding_tables())
        if self.has_kg and self.cfg.lambda_att:
            out = out + self.cfg.lambda_att * l2_sum(*m.attention_params())
        return out

    def param_groups(self) -> list[dict]:
        m = self.model
        groups = [{"params": m.embedding_tables(), "weight_decay": self.cfg.lambda_emb},
                  {"params": [p for p in [m.h] if p.requires_grad], "weight_decay": 0.0}]
        groups.append({"params": m.attention_params(), "weight_decay": self.cfg.lambda_att if self.has_kg else 0.0})
        return groups

    def kg_facts(self, items: Tensor):
        """(KGFacts of the batch, w⁻ per batch item), or None when the KG loss is off."""
        if not (self.has_kg and self.cfg.mu):
            return None
        seg, pos, ptr = csr_gather(self.kg_indptr, items, with_ptr=True)
        w_neg = self.w_neg.index_select(0, items)
        return KGFacts(seg=seg, ptr=ptr, rel=self.kg_rel.index_select(0, pos), tail=self.kg_tail.index_select(0, pos),
                       w_neg=w_neg.index_select(0, seg), w_pos=self.cfg.w_pos), w_neg

    def __call__(self, items: Tensor, epoch: int, strategy=LOCAL):
        """Loss of the item batch `items` [B].  -> (scalar loss, dict of detached parts)."""
        m = self.model
        facts = self.kg_facts(items)
        kg, w_neg = facts if facts is not None else (None, None)
        fwd = m.batch_forward(items, epoch, self.masks, strategy, kg)
        seg, pos, ptr = csr_gather(self.iu_indptr, items, with_ptr=True)
        c_pos = self.c_pos_scalar if self.iu_c_pos is None else self.iu_c_pos.index_select(0, pos)
        cf = cf_batch_loss(strategy, m.user_emb, "user", fwd.q, m.h, seg, ptr, self.iu_users.index_select(0, pos),
                           c_pos, self.c_neg.index_select(0, items))
        total = self.cfg.kappa * cf
        parts = {"cf": cf.detach()}
        if self.ridge is not None:
            ridge = ridge_share(self.ridge[1], m.item_emb, self.ridge[0], m.users(), m.h, self.cfg.reg, items,
                                self.n_units)
            if m.has_kg:  # tails and relations: the plain ridge reg·‖·‖², shared out over the batches
                kg_tables = (m.tails() ** 2).sum() + (m.rel_emb[: m.n_relations] ** 2).sum()
                ridge = ridge + len(items) / self.n_units * self.cfg.reg * kg_tables
            total = total + ridge
            parts["ridge"] = ridge.detach()
        if kg is not None:
            tail_table = m.tail_table_for_gram() if fwd.tail_gram is None else None
            s_head = strategy.batch_gram("kg", weighted_gram(fwd.e_kg, w_neg))
            positive = fwd.kg_positive
            if positive is None:
                g = torch.linalg.vecdot(fwd.e_kg.index_select(0, kg.seg) * fwd.z, fwd.x)
                positive = positive_term(g, kg.w_pos, kg.w_neg)
            tail_gram = fwd.tail_gram if tail_table is None else gram(tail_table)
            kg_loss = positive + strategy.once(kg_allpairs_term(fwd.rel_gram, s_head, tail_gram))
            total = total + self.cfg.mu * kg_loss
            parts["kg"] = kg_loss.detach()
        return total, parts
