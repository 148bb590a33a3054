"""Batch objectives: what one optimiser step minimises (spec §3.4).

An objective knows its batch units (items for JNSKR, users for ENMF), holds the training
data it needs as device tensors (CSR positives, constant weights) and returns the loss of a
batch.  Models hold parameters only; losses are the pure functions of `jnskr.losses`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from jnskr.config import ENMFConfig, JNSKRConfig
from jnskr.data.dataset import Interactions
from jnskr.data.kg import ItemKG
from jnskr.losses import l2_sum, nonsampling_cf_loss, nonsampling_kg_loss, weighted_gram
from jnskr.models.enmf import ENMF
from jnskr.models.fused import attention_and_kg_positive, cf_positive
from jnskr.models.jnskr import JNSKR, csr_gather
from jnskr.training.dropout import EpochMasks, keyed_uniform
from jnskr.training.weights import cf_negative_weights, kg_negative_weights


@dataclass
class Grams:
    """Optional precomputed Gram matrices (e.g. all-reduced across ranks)."""

    users: Tensor | None = None
    relations: Tensor | None = None
    tails: Tensor | None = None


def _gram_rows(comm, name: str, table: Tensor, idx: Tensor, given: Tensor | None) -> tuple[Tensor, Tensor]:
    """(Gram of `table`, `table[idx]`): the caller's Gram when given, else the comm's fused op."""
    if given is not None:
        return given, comm.rows(name, table, idx)
    return comm.gram_rows(name, table, idx)


def _t(a: np.ndarray, device, dtype=torch.int64) -> Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)


class JNSKRObjective:
    """κ·L̃_CF + μ·L̃_KG over an item batch; the L2 term ½λ_emb‖tables‖² + ½λ_att‖attention‖²
    (spec §3.4, whole tables at every batch) enters as the optimiser's weight decay, which adds
    exactly its gradient λ·θ at every step without an autograd pass over the tables
    (`param_groups`); `l2()` gives its value for the log."""

    def __init__(self, model: JNSKR, train: Interactions, item_kg: ItemKG | None, cfg: JNSKRConfig, seed: int):
        self.model = model
        self.cfg = cfg
        self.seed = seed
        dev = model.device
        by_item = train.transpose()
        self.iu_indptr = _t(by_item.indptr, dev)
        self.iu_users = _t(by_item.indices, dev)
        counts = train.item_counts()
        self.c_neg_np = cf_negative_weights(counts, cfg.c0, cfg.beta)
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
        # without a neighbour cap the attention neighbourhood is exactly the KG facts
        self.shared_neighbours = self.has_kg and cfg.max_neighbors is None

    def weight_summary(self) -> dict:
        out = {"c_neg_min": float(self.c_neg_np[self.c_neg_np > 0].min(initial=0.0)),
               "c_neg_max": float(self.c_neg_np.max(initial=0.0)), "c_neg_sum": float(self.c_neg_np.sum())}
        if self.has_kg:
            w = self.w_neg_np
            out.update(w_neg_min=float(w[w > 0].min(initial=0.0)), w_neg_max=float(w.max(initial=0.0)),
                       w_neg_sum=float(w.sum()))
        return out

    def item_inputs(self, items: Tensor, epoch: int, msg: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(q̃_B for the CF loss, ẽ_B for the KG loss), with dropout in train mode (spec §2.4).

        `msg`: the batch's messages m_v when the caller computed them already."""
        m = self.model
        e = m.comm.rows("item", m.item_emb, items)
        if msg is None and m.has_kg:
            msg = m.messages(items)
        return self.cf_items(e, msg, items, epoch), self.kg_heads(e, items, epoch)

    def cf_items(self, e: Tensor, msg: Tensor | None, items: Tensor, epoch: int) -> Tensor:
        """q̃_B = drop(e_B) + drop(m_B) in train mode, e_B + m_B otherwise.  -> [B, d]."""
        if not self.model.training:
            return e + msg if msg is not None else e
        q = self.masks.apply(e, 1.0 - self.cfg.keep_prob[0], epoch, items, stream=0)
        if msg is not None:
            q = q + self.masks.apply(msg, 1.0 - self.cfg.keep_prob[1], epoch, items, stream=1)
        return q

    def kg_heads(self, e: Tensor, items: Tensor, epoch: int) -> Tensor:
        """ẽ_B, the KG loss's head vectors (their own dropout mask in train mode).  -> [B, d]."""
        if not self.model.training:
            return e
        return self.masks.apply(e, 1.0 - self.cfg.keep_prob[1], epoch, items, stream=2)

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
                  {"params": [m.h], "weight_decay": 0.0}]
        groups.append({"params": m.attention_params(), "weight_decay": self.cfg.lambda_att if self.has_kg else 0.0})
        return groups

    def __call__(self, items: Tensor, epoch: int, grams: Grams | None = None):
        """Loss of the item batch `items` [B].  -> (scalar loss, dict of detached parts)."""
        m = self.model
        comm = m.comm
        grams = grams or Grams()
        use_kg = self.has_kg and self.cfg.mu
        msg = x = z = tail_gram = rel_gram = None
        if use_kg:
            kseg, kpos, kptr = csr_gather(self.kg_indptr, items, with_ptr=True)
            rel, tail = self.kg_rel.index_select(0, kpos), self.kg_tail.index_select(0, kpos)
            if len(m.tail_tied) == 0:
                tail_gram, x = _gram_rows(comm, "tail", m.tail_emb, tail, grams.tails)
            else:  # tied tails read the item table: the KG loss builds their Gram
                tail_gram, x = grams.tails, m.tails(tail)
            rel_gram, z = _gram_rows(comm, "rel", m.rel_emb, rel, grams.relations)
            w_neg = self.w_neg.index_select(0, items)
        kg_positive = None
        if use_kg and self.shared_neighbours and m.cfg.attention == "code":
            # attention and the KG loss's positive part share z∘x: one op with a hand-written backward
            e = comm.rows("item", m.item_emb, items)
            e_kg = self.kg_heads(e, items, epoch)
            msg, kg_positive = attention_and_kg_positive(x, z, e_kg, m.att_W, m.att_b, m.att_w, kseg, kptr,
                                                         len(items), self.cfg.w_pos, w_neg.index_select(0, kseg))
            q = self.cf_items(e, msg, items, epoch)
        else:
            if use_kg and self.shared_neighbours:  # attention sees every fact: gather the rows once for both
                msg = m.messages_from_rows(kseg, x, z, len(items))
            q, e_kg = self.item_inputs(items, epoch, msg)
        seg, pos, ptr = csr_gather(self.iu_indptr, items, with_ptr=True)
        pos_users = self.iu_users.index_select(0, pos)
        c_neg = self.c_neg.index_select(0, items)
        user_gram, user_rows = _gram_rows(comm, "user", m.user_emb, pos_users, grams.users)
        cf_pos = cf_positive(user_rows, q, m.h, seg, ptr, self.cfg.c_pos, c_neg.index_select(0, seg))
        cf = nonsampling_cf_loss(m.user_emb, q, m.h, pos_users, seg, self.cfg.c_pos, c_neg, user_gram=user_gram,
                                 user_rows=user_rows,
                                 batch_gram=comm.batch_gram("cf", weighted_gram(q, c_neg)),
                                 h_allpairs=comm.h_allpairs(m.h), positive=cf_pos)
        total = self.cfg.kappa * cf
        parts = {"cf": cf.detach()}
        if use_kg:
            kg = nonsampling_kg_loss(e_kg, m.rel_emb, m.tail_table_for_gram(), kseg, rel, tail, self.cfg.w_pos,
                                     w_neg, rel_gram=rel_gram, tail_gram=tail_gram, rel_rows=z,
                                     tail_rows=x, head_gram=comm.batch_gram("kg", weighted_gram(e_kg, w_neg)),
                                     positive=kg_positive)
            total = total + self.cfg.mu * kg
            parts["kg"] = kg.detach()
        return total, parts

    def gram_inputs(self) -> dict[str, Tensor]:
        """The tables whose Gram matrices the all-pairs terms need (for distributed sharing)."""
        m = self.model
        out = {"users": m.user_emb}
        if self.has_kg:
            out.update(relations=m.rel_emb, tails=m.tail_table_for_gram())
        return out


class ENMFObjective:
    """ENMF's whole-data loss: user batches against all items with a uniform negative weight
    (original), or item batches with JNSKR's popularity weights (`weighting: popularity`)."""

    def __init__(self, model: ENMF, train: Interactions, cfg: ENMFConfig, seed: int):
        self.model = model
        self.cfg = cfg
        self.seed = seed
        dev = model.device
        self.by_user = cfg.weighting == "uniform"
        csr = train if self.by_user else train.transpose()
        self.indptr = _t(csr.indptr, dev)
        self.indices = _t(csr.indices, dev)
        if self.by_user:
            self.n_units = train.n_users
            self.c_neg = None
        else:
            self.n_units = train.n_items
            self.c_neg = _t(cf_negative_weights(train.item_counts(), cfg.c0, cfg.beta), dev, torch.float32)
        self.has_kg = False
        self.masks = EpochMasks(seed, self.n_units, cfg.embed_dim)

    def l2(self) -> Tensor:
        return self.cfg.lambda_emb * l2_sum(*self.model.embedding_tables())

    def param_groups(self) -> list[dict]:
        m = self.model
        return [{"params": m.embedding_tables(), "weight_decay": self.cfg.lambda_emb},
                {"params": [m.h], "weight_decay": 0.0}]

    def __call__(self, units: Tensor, epoch: int, grams: Grams | None = None):
        m = self.model
        comm = m.comm
        grams = grams or Grams()
        batch_name, other_name = ("user", "item") if self.by_user else ("item", "user")
        batch_table = m.user_emb if self.by_user else m.item_emb
        other = m.item_emb if self.by_user else m.user_emb
        b = comm.rows(batch_name, batch_table, units)
        if m.training:
            b = self.masks.apply(b, 1.0 - self.cfg.keep_prob, epoch, units, stream=0)
        if self.by_user:
            c_neg = torch.full((len(units),), self.cfg.negative_weight, dtype=b.dtype, device=b.device)
        else:
            c_neg = self.c_neg.index_select(0, units)
        seg, pos, ptr = csr_gather(self.indptr, units, with_ptr=True)
        others = self.indices.index_select(0, pos)
        other_gram, other_rows = _gram_rows(comm, other_name, other, others, grams.users)
        loss = nonsampling_cf_loss(other, b, m.h, others, seg, 1.0, c_neg, user_gram=other_gram,
                                   user_rows=other_rows,
                                   batch_gram=comm.batch_gram("cf", weighted_gram(b, c_neg)),
                                   h_allpairs=comm.h_allpairs(m.h),
                                   positive=cf_positive(other_rows, b, m.h, seg, ptr, 1.0, c_neg.index_select(0, seg)))
        return loss, {"cf": loss.detach()}

    def gram_inputs(self) -> dict[str, Tensor]:
        return {"users": self.model.item_emb if self.by_user else self.model.user_emb}




def _keyed_index(seed: int, epoch: int, ids: Tensor, n: int, stream: int) -> Tensor:
    """A uniform draw from 0..n-1 per id, keyed by (seed, epoch, id, stream).  ids: [k] -> [k]."""
    u = keyed_uniform(seed, epoch, ids, 1, stream, dtype=torch.float64)[:, 0]
    return (u * n).long().clamp_max(n - 1)


class _PositiveLookup:
    """Membership test for (row, col) in a CSR matrix, vectorised (sorted packed keys)."""

    def __init__(self, csr: Interactions, device):
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

    def __init__(self, model: ENMF, train: Interactions, reg: float, seed: int):
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
        self.has_kg = False

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.model.parameters()), "weight_decay": 0.0}]

    def __call__(self, units: Tensor, epoch: int, grams=None):
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

    def __init__(self, model: JNSKR, train: Interactions, item_kg: ItemKG | None, cfg: JNSKRConfig, seed: int,
                 negatives: int = 1):
        super().__init__(model, train, item_kg, cfg, seed)
        self.negatives = negatives
        self.lookup = _PositiveLookup(train, model.device)
        self.n_items = train.n_items
        self.n_tails = item_kg.n_tails if self.has_kg else 0

    def __call__(self, items: Tensor, epoch: int, grams=None):
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
