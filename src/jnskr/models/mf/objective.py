"""The whole-data CF loss of a batch and the objectives of the MF family (docs/spec.md §3.4).

`cf_batch_loss` is the CF loss every whole-data model shares (ENMF's tables, LightGCN's
propagation, JNSKR's items with messages): the fused positive term over the batch's pairs plus
the all-pairs term through Gram matrices.  `CFObjective` trains any model with an `encode()`
on it; `BPRObjective` is the sampled baseline.  An objective reads the model only through its
forward (`encode`, `batch_forward`) and the strategy's row access (`jnskr.parallel`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from jnskr.losses import cf_allpairs_term, l2_sum
from jnskr.losses.fused import cf_positive
from jnskr.losses.gram import weighted_gram
from jnskr.ops import csr_gather
from jnskr.parallel import LocalStrategy
from jnskr.training.dropout import EpochMasks
from jnskr.training.sampling import PositiveLookup, sample_negatives
from jnskr.training.weights import block_ridges, cf_negative_weights, positive_weights, scalar_positive_weight

LOCAL = LocalStrategy()


def device_tensor(a: np.ndarray, device, dtype=torch.int64) -> Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)


def pair_weights(values, c_pos: float, device, dtype, alpha: float | None = None) -> Tensor | None:
    """c⁺_uv of every training pair in the CSR order of `values` (`positive_weights`) as a device
    tensor, or None: every pair weighs the scalar `scalar_positive_weight(c_pos, alpha)`."""
    w = positive_weights(values, c_pos, alpha)
    return None if w is None else device_tensor(w, device, dtype)


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


def config_ridges(cfg, train, c_neg: np.ndarray, dtype, device) -> tuple[Tensor, Tensor] | None:
    """The per-row ridges (users [M], items [N]) of a config's `reg` (`block_ridges`), or None."""
    if not cfg.reg:
        return None
    users, items = block_ridges(cfg.reg, cfg.reg_exponent, train, c_neg)
    return device_tensor(users, device, dtype), device_tensor(items, device, dtype)


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
        self.indptr = device_tensor(csr.indptr, dev)
        self.indices = device_tensor(csr.indices, dev)
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
            self.c_neg = device_tensor(c_neg, dev, torch.float32)
        self.ridge = config_ridges(cfg, train, c_neg, model.h.dtype, dev)
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


class BPRObjective:
    """BPR-MF: −log σ(ŷ_ui − ŷ_uj) over training pairs (u, i) with a sampled negative j, plus
    ½·reg·(‖p_u‖² + ‖q_i‖² + ‖q_j‖²).  Batch units are training pairs."""

    def __init__(self, model, train, reg: float, seed: int):
        self.model = model
        self.reg = reg
        self.seed = seed
        dev = model.device
        u, i = train.pairs()
        self.users = device_tensor(u, dev)
        self.items = device_tensor(i, dev)
        self.n_items = train.n_items
        self.lookup = PositiveLookup(train, dev)
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
