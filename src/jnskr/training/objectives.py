"""Batch objectives: what one optimiser step minimises (docs/spec.md §3.4).

An objective knows its batch units (items for JNSKR, users or items for the whole-data CF loss,
training pairs for BPR), holds the training data it needs as device tensors (CSR positives,
constant weights) and returns the loss of a batch composed of the pure terms of `jnskr.losses`.
It reads the model only through the model's own forward (`batch_forward`, `encode`) and the
strategy's row access (`jnskr.parallel`), never through its internals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from jnskr.losses import cf_allpairs_term, kg_allpairs_term, l2_sum, positive_term, weighted_gram
from jnskr.losses.fused import cf_positive
from jnskr.losses.gram import gram
from jnskr.ops import csr_gather
from jnskr.parallel import LocalStrategy
from jnskr.training.dropout import EpochMasks
from jnskr.training.weights import (block_ridges, cf_negative_weights, kg_negative_weights, positive_weights,
                                    scalar_positive_weight)

LOCAL = LocalStrategy()


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


def _t(a: np.ndarray, device, dtype=torch.int64) -> Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)


def pair_weights(values, c_pos: float, device, dtype, alpha: float | None = None) -> Tensor | None:
    """c⁺_uv of every training pair in the CSR order of `values` (`positive_weights`) as a device
    tensor, or None: every pair weighs the scalar `scalar_positive_weight(c_pos, alpha)`."""
    w = positive_weights(values, c_pos, alpha)
    return None if w is None else _t(w, device, dtype)


def cf_batch_loss(strategy, all_table: Tensor, all_name: str, batch: Tensor, h: Tensor, seg: Tensor, ptr: Tensor,
                  pos_all: Tensor, c_pos: float | Tensor, c_neg: Tensor) -> Tensor:
    """The whole-data CF loss of one batch (constant dropped): the fused positive term over the
    batch's pairs plus ⟨hhᵀ ∘ S_all ∘ S_batch⟩.

    Args: all_table [M, d] every row of the "all" side (a parameter table or an encoder's
    output); batch [B, d] the batch side (after dropout); h [d]; seg/ptr the batch row of each
    positive pair [n] and its pointer [B+1]; pos_all [n] the pairs' rows of `all_table`;
    c_pos the positive weight (a scalar, or [n] c⁺_uv per pair); c_neg [B] the batch rows'
    negative weights.
    """
    all_gram, all_rows = strategy.gram_rows(all_name, all_table, pos_all)
    positive = cf_positive(all_rows, batch, h, seg, ptr, c_pos, c_neg.index_select(0, seg))
    s_batch = strategy.batch_gram("cf", weighted_gram(batch, c_neg))
    return positive + strategy.once(cf_allpairs_term(strategy.h_allpairs(h), all_gram, s_batch))


def _row_ridges(cfg, train, c_neg: np.ndarray, dtype, device) -> tuple[Tensor, Tensor] | None:
    """The per-row ridges (users [M], items [N]) of a config's `reg` (`block_ridges`), or None."""
    if not cfg.reg:
        return None
    users, items = block_ridges(cfg.reg, cfg.reg_exponent, train, c_neg)
    return _t(users, device, dtype), _t(items, device, dtype)


def ridge_share(r_mine: Tensor, mine: Tensor, r_other: Tensor, other: Tensor, h: Tensor, reg: float, units: Tensor,
                n_units: int) -> Tensor:
    """A batch's share of the ridge λ Σ_i s_i‖θ_i‖² (+ λ‖h‖² when h is learned): the batch rows'
    own ridge (`units` of the table `mine`, per-row weights r_mine [n_units]) and the fraction
    B/n_units of the other table's and of h's, so that one epoch adds the whole ridge once."""
    share = len(units) / n_units
    out = r_mine.index_select(0, units) @ (mine.index_select(0, units) ** 2).sum(1)
    out = out + share * (r_other @ (other ** 2).sum(1))
    if h.requires_grad:
        out = out + share * reg * (h ** 2).sum()
    return out


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
        self.iu_indptr = _t(by_item.indptr, dev)
        self.iu_users = _t(by_item.indices, dev)
        self.iu_c_pos = pair_weights(by_item.values, cfg.c_pos, dev, model.h.dtype, cfg.alpha)  # None: one scalar
        self.c_pos_scalar = scalar_positive_weight(cfg.c_pos, cfg.alpha)
        counts = train.item_counts()
        self.c_neg_np = cf_negative_weights(counts, cfg.c0, cfg.beta)
        self.ridge = _row_ridges(cfg, train, self.c_neg_np, model.h.dtype, dev)
        self.c_neg = _t(self.c_neg_np, dev, torch.float32)
        self.has_kg = item_kg is not None and item_kg.n_facts > 0
        if self.has_kg:
            self.kg_indptr = _t(item_kg.indptr, dev)
            self.kg_rel = _t(item_kg.relations, dev)
            self.kg_tail = _t(item_kg.tails, dev)
            self.w_neg_np = kg_negative_weights(item_kg.degrees(), counts, cfg.c1, cfg.beta, cfg.kg_neg_weight)
            self.w_neg = _t(self.w_neg_np, dev, torch.float32)
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


class CFObjective:
    """The whole-data CF loss of any model with an `encode()` (ENMF's tables, LightGCN's
    propagation): user batches against every item with a uniform negative weight (ENMF's
    original), or item batches with JNSKR's popularity weights (`weighting: popularity`).  The
    batch side gets keyed dropout (`keep_prob`); L2 is weight decay on `model.embedding_tables()`.

    A config with a confidence slope `alpha` weighs a pair 1 + α·value; one with a ridge `reg`
    adds λ Σ s_i‖θ_i‖² (the same F as the exact sweeps): each batch carries its own rows' ridge
    and its share B/n_units of the other side's and of h's, so an epoch adds the ridge once."""

    def __init__(self, model, train, cfg, seed: int):
        self.model = model
        self.cfg = cfg
        self.seed = seed
        dev = model.device
        self.by_user = cfg.weighting == "uniform"
        csr = train if self.by_user else train.transpose()
        self.indptr = _t(csr.indptr, dev)
        self.indices = _t(csr.indices, dev)
        self.c_pos_scalar = scalar_positive_weight(1.0, cfg.alpha)
        self.c_pos = pair_weights(csr.values, 1.0, dev, model.h.dtype, cfg.alpha)  # None: every pair weighs c_pos_scalar
        counts = train.item_counts()
        c_neg = (np.full(train.n_items, float(cfg.negative_weight)) if self.by_user
                 else cf_negative_weights(counts, cfg.c0, cfg.beta))
        if self.by_user:
            self.n_units = train.n_users
            self.c_neg = None
        else:
            self.n_units = train.n_items
            self.c_neg = _t(c_neg, dev, torch.float32)
        self.ridge = _row_ridges(cfg, train, c_neg, model.h.dtype, dev)
        self.masks = EpochMasks(seed, self.n_units, cfg.embed_dim)

    def l2(self) -> Tensor:
        return self.cfg.lambda_emb * l2_sum(*self.model.embedding_tables())

    def weight_summary(self) -> dict:
        return {}

    def param_groups(self) -> list[dict]:
        m = self.model
        return [{"params": m.embedding_tables(), "weight_decay": self.cfg.lambda_emb},
                {"params": [p for p in [m.h] if p.requires_grad], "weight_decay": 0.0}]

    def __call__(self, units: Tensor, epoch: int, strategy=LOCAL):
        m = self.model
        users, items = m.encode()
        batch_name, other_name = ("user", "item") if self.by_user else ("item", "user")
        batch_table, other = (users, items) if self.by_user else (items, users)
        b = strategy.rows(batch_name, batch_table, units)
        if m.training:
            b = self.masks.apply(b, 1.0 - self.cfg.keep_prob, epoch, units, stream=0)
        if self.by_user:
            c_neg = torch.full((len(units),), self.cfg.negative_weight, dtype=b.dtype, device=b.device)
        else:
            c_neg = self.c_neg.index_select(0, units)
        seg, pos, ptr = csr_gather(self.indptr, units, with_ptr=True)
        c_pos = self.c_pos_scalar if self.c_pos is None else self.c_pos.index_select(0, pos)
        loss = cf_batch_loss(strategy, other, other_name, b, m.h, seg, ptr, self.indices.index_select(0, pos), c_pos,
                             c_neg)
        parts = {"cf": loss.detach()}
        if self.ridge is not None:
            (r_user, r_item), (users, items) = self.ridge, m.embedding_tables()
            mine = (r_user, users, r_item, items) if self.by_user else (r_item, items, r_user, users)
            ridge = ridge_share(*mine, m.h, self.cfg.reg, units, self.n_units)
            loss = loss + ridge
            parts["ridge"] = ridge.detach()
        return loss, parts


def _keyed_index(seed: int, epoch: int, ids: Tensor, n: int, stream: int) -> Tensor:
    """A uniform draw from 0..n-1 per id, keyed by (seed, epoch, id, stream).  ids: [k] -> [k]."""
    from jnskr.training.dropout import keyed_uniform

    u = keyed_uniform(seed, epoch, ids, 1, stream, dtype=torch.float64)[:, 0]
    return (u * n).long().clamp_max(n - 1)


class _PositiveLookup:
    """Membership test for (row, col) in a CSR matrix, vectorised (sorted packed keys)."""

    def __init__(self, csr, device):
        rows, cols = csr.pairs()
        self.width = max(csr.n_items, 1)
        self.keys = torch.as_tensor(np.sort(rows * self.width + cols), device=device)

    def contains(self, rows: Tensor, cols: Tensor) -> Tensor:
        k = rows * self.width + cols
        pos = torch.searchsorted(self.keys, k).clamp_max(max(len(self.keys) - 1, 0))
        return self.keys[pos] == k if len(self.keys) else torch.zeros_like(k, dtype=torch.bool)


def sample_negatives(seed, epoch, ids, rows, n, lookup: _PositiveLookup | None, stream: int) -> Tensor:
    """One uniformly drawn column per id, redrawn (twice at most) where it is a positive of its row."""
    neg = _keyed_index(seed, epoch, ids, n, stream)
    if lookup is not None:
        for extra in (1, 2):
            bad = lookup.contains(rows, neg)
            if not bool(bad.any()):
                break
            neg = torch.where(bad, _keyed_index(seed, epoch, ids, n, stream + 10 * extra), neg)
    return neg


class BPRObjective:
    """BPR-MF: −log σ(ŷ_ui − ŷ_uj) over training pairs (u, i) with a sampled negative j, plus
    ½·reg·(‖p_u‖² + ‖q_i‖² + ‖q_j‖²).  Batch units are training pairs."""

    def __init__(self, model, train, reg: float, seed: int):
        self.model = model
        self.reg = reg
        self.seed = seed
        dev = model.device
        u, i = train.pairs()
        self.users = _t(u, dev)
        self.items = _t(i, dev)
        self.n_items = train.n_items
        self.lookup = _PositiveLookup(train, dev)
        self.n_units = train.nnz

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.model.parameters()), "weight_decay": 0.0}]

    def l2(self) -> None:  # its ½·reg penalty is part of each batch's loss, not weight decay
        return None

    def weight_summary(self) -> dict:
        return {}

    def __call__(self, units: Tensor, epoch: int, strategy=LOCAL):
        m = self.model
        u, i = self.users[units], self.items[units]
        j = sample_negatives(self.seed, epoch, units, u, self.n_items, self.lookup, stream=5)
        pu, qi, qj = m.user_emb[u], m.item_emb[i], m.item_emb[j]
        diff = ((pu * (qi - qj)) @ m.h)
        loss = -torch.nn.functional.logsigmoid(diff).sum()
        loss = loss + 0.5 * self.reg * ((pu * pu).sum() + (qi * qi).sum() + (qj * qj).sum())
        return loss, {"bpr": loss.detach()}


class JNSKRSampledObjective(JNSKRObjective):
    """The JNSKR model trained with negative sampling (the paper's central ablation): per item
    batch, BPR over its training pairs (u, v) with a sampled negative item v', and a sampled
    DistMult loss −log σ(ĝ(v,r,t) − ĝ(v,r,t')) over its facts with a sampled tail t'.  Same
    model, dropout, batches, optimiser and L2 as `JNSKRObjective`; κ and μ weigh the two."""

    def __init__(self, model, train, item_kg, cfg, seed: int, negatives: int = 1):
        super().__init__(model, train, item_kg, cfg, seed)
        self.negatives = negatives
        self.lookup = _PositiveLookup(train, model.device)
        self.n_items = train.n_items
        self.n_tails = item_kg.n_tails if self.has_kg else 0

    def __call__(self, items: Tensor, epoch: int, strategy=LOCAL):
        m = self.model
        seg, pos = csr_gather(self.iu_indptr, items)
        users = self.iu_users[pos]
        q_pos, e_kg = self.item_inputs(items, epoch)
        total = q_pos.new_zeros(())
        parts = {}
        for k in range(self.negatives):
            neg = sample_negatives(self.seed, epoch, pos, users, self.n_items, self.lookup, stream=20 + k)
            uniq, inv = torch.unique(neg, return_inverse=True)
            q_neg, _ = self.item_inputs(uniq, epoch)
            p = m.user_emb[users]
            diff = (p * (q_pos[seg] - q_neg[inv])) @ m.h
            cf = -torch.nn.functional.logsigmoid(diff).sum()
            total = total + self.cfg.kappa * cf
            parts["cf"] = parts.get("cf", 0.0) + cf.detach()
        if self.has_kg and self.cfg.mu:
            kseg, kpos = csr_gather(self.kg_indptr, items)
            rel, tail = self.kg_rel.index_select(0, kpos), self.kg_tail.index_select(0, kpos)
            z = m.rel_emb[rel]
            for k in range(self.negatives):
                t_neg = _keyed_index(self.seed, epoch, kpos, self.n_tails, stream=40 + k)
                head = e_kg[kseg] * z
                diff = (head * (m.tails(tail) - m.tails(t_neg))).sum(1)
                kg = -torch.nn.functional.logsigmoid(diff).sum()
                total = total + self.cfg.mu * kg
                parts["kg"] = parts.get("kg", 0.0) + kg.detach()
        return total, parts
