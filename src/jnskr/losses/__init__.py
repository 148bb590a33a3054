"""Whole-data (non-sampling) losses of JNSKR, as pure functions on tensors.

Each efficient loss has a brute-force twin (`*_bruteforce`) that enumerates every pair or
triple.  The twins exist for tests and benchmarks only; training never calls them.

Both efficient losses drop a Θ-invariant constant (Σ c⁺ over the positives, respectively w⁺·n), so

    nonsampling_cf_loss(...) + c_pos * n  ==  nonsampling_cf_loss_bruteforce(...)   (c_pos.sum() when per pair)
    nonsampling_kg_loss(...) + w_pos * n  ==  nonsampling_kg_loss_bruteforce(...)

in value and in gradient (the constant has none).  All functions work for any float dtype on
any device.  Positives must be unique pairs (triples); duplicates break the identity.

Each loss is composed of pure terms that training uses directly: `positive_term` (the observed
pairs or triples) and `cf_allpairs_term` / `kg_allpairs_term` (every pair or triple, through
d×d Gram matrices from `jnskr.losses.gram`).  `jnskr.losses.fused` holds the fused per-row
kernels of the positive parts with hand-written backward passes (each with a plain twin).

Notation (docs/spec.md §3): the CF loss over an M x B block of (user, item) pairs is

    L = Σ_{u,v} ω_uv (y_uv − ŷ_uv)²,   ŷ_uv = hᵀ(p_u ∘ q_v),
    ω_uv = c⁺_uv if (u,v) is positive else c_neg[v]

and is computed as

    Σ_pos [(c⁺_uv − c_neg[v]) ŷ² − 2 c⁺_uv ŷ]  +  ⟨ hhᵀ ∘ PᵀP ∘ Qᵀ diag(c_neg) Q ⟩.

c⁺_uv is one scalar c_pos, or a tensor [n] with one weight per positive (c_pos · value under
``data.weight: confidence``, `jnskr.training.weights.positive_weights`).

The loss is symmetric in its two sides: for user batches pass the batch users as `item_emb`
and all items as `user_emb`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from jnskr.interactions import mf_scores
from jnskr.losses.gram import gram, gram_with_rows, weighted_gram

__all__ = [
    "gram",
    "gram_with_rows",
    "weighted_gram",
    "positive_term",
    "cf_allpairs_term",
    "kg_allpairs_term",
    "nonsampling_cf_loss",
    "nonsampling_cf_loss_bruteforce",
    "nonsampling_kg_loss",
    "nonsampling_kg_loss_bruteforce",
    "l2_sum",
]


def positive_term(y: Tensor, w_pos: float | Tensor, w_neg: Tensor) -> Tensor:
    """The observed part of a whole-data weighted squared loss (constant Σ w_pos dropped).

    Σ_f [(w_pos_f − w_neg_f) y_f² − 2 w_pos_f y_f]: on an observed entry the loss w_pos(1 − y)²
    minus the all-pairs term's w_neg·y² that counted it as unobserved.

    Args: y float [n] predictions of the observed pairs (or triples); w_pos weight of an
    observed entry (a scalar, or float [n] one per entry); w_neg float [n] weight the all-pairs
    term gave each of them.
    Returns: scalar.
    """
    return ((w_pos - w_neg) * y * y - 2.0 * w_pos * y).sum()


def cf_allpairs_term(h: Tensor, s_all: Tensor, s_batch: Tensor) -> Tensor:
    """Σ_{u, v∈B} c⁻_v ŷ_uv² = ⟨hhᵀ ∘ S_all ∘ S_batch⟩ = hᵀ (S_all ∘ S_batch) h.

    Args: h [d]; s_all [d, d] = PᵀP over every row of the "all" side; s_batch [d, d] =
    Q_Bᵀ diag(c⁻) Q_B over the batch side.  Returns: scalar.
    """
    return h @ ((s_all * s_batch) @ h)


def kg_allpairs_term(s_rel: Tensor, s_head: Tensor, s_tail: Tensor) -> Tensor:
    """Σ_{v∈B} w⁻_v Σ_r Σ_t ĝ_vrt² = ⟨ZᵀZ ∘ E_Bᵀ diag(w⁻) E_B ∘ XᵀX⟩ (DistMult).

    Args: the three [d, d] Gram matrices.  Returns: scalar.
    """
    return (s_rel * s_head * s_tail).sum()


def nonsampling_cf_loss(
    user_emb: Tensor,
    item_emb: Tensor,
    h: Tensor,
    pos_user: Tensor,
    pos_item: Tensor,
    c_pos: float | Tensor,
    c_neg: Tensor,
) -> Tensor:
    """Efficient whole-data weighted squared CF loss (constant Σ c_pos over the positives dropped).

    Args:
        user_emb: [M, d] the "all" side (every user; or every item for user batches).
        item_emb: [B, d] the batch side.
        h: [d] prediction vector.
        pos_user: [n] int64 rows of `user_emb` of the positive pairs.
        pos_item: [n] int64 rows of `item_emb` (0..B-1) of the positive pairs.
        c_pos: weight of a positive pair: a scalar, or float [n] one per positive pair.
        c_neg: [B] weight of an unobserved pair, per batch row.

    Returns:
        scalar: Σ_pos[(c_pos − c_neg[v])ŷ² − 2c_pos·ŷ] + ⟨hhᵀ ∘ UᵀU ∘ Iᵀdiag(c_neg)I⟩.
    """
    y = (user_emb.index_select(0, pos_user) * item_emb.index_select(0, pos_item)) @ h  # [n]
    positive = positive_term(y, c_pos, c_neg.index_select(0, pos_item))
    return positive + cf_allpairs_term(h, gram(user_emb), weighted_gram(item_emb, c_neg))


def nonsampling_cf_loss_bruteforce(
    user_emb: Tensor,
    item_emb: Tensor,
    h: Tensor,
    pos_user: Tensor,
    pos_item: Tensor,
    c_pos: float | Tensor,
    c_neg: Tensor,
) -> Tensor:
    """Σ over all M×B pairs of ω(y − ŷ)², enumerated explicitly (tests/benchmarks only).

    Shapes as `nonsampling_cf_loss`.  Memory O(M·B).
    """
    yhat = mf_scores(user_emb, h, item_emb)  # [M, B]
    y = torch.zeros_like(yhat)
    y[pos_user, pos_item] = 1.0
    w = c_neg.unsqueeze(0).expand_as(yhat).clone()
    w[pos_user, pos_item] = torch.as_tensor(c_pos, dtype=w.dtype, device=w.device)
    return (w * (y - yhat) ** 2).sum()


def nonsampling_kg_loss(
    head_emb: Tensor,
    rel_emb: Tensor,
    tail_emb: Tensor,
    pos_head: Tensor,
    pos_rel: Tensor,
    pos_tail: Tensor,
    w_pos: float,
    w_neg: Tensor,
) -> Tensor:
    """Efficient whole-data weighted squared DistMult loss (constant w_pos·n dropped).

    Args:
        head_emb: [B, d] head (item base) vectors of the batch.
        rel_emb: [R, d] every relation vector.
        tail_emb: [T, d] every tail-entity vector.
        pos_head: [n] int64 rows of `head_emb` (0..B-1) of the positive triples.
        pos_rel: [n] int64 relation ids.
        pos_tail: [n] int64 tail ids.
        w_pos: weight of a positive triple.
        w_neg: [B] weight of an unobserved triple, per head.

    Returns:
        scalar: Σ_pos[(w_pos − w_neg[h])ĝ² − 2w_pos·ĝ] + ⟨ZᵀZ ∘ E_Bᵀ diag(w_neg) E_B ∘ XᵀX⟩,
        with ĝ = Σ_i e_hi z_ri x_ti.
    """
    g = torch.linalg.vecdot(head_emb.index_select(0, pos_head) * rel_emb.index_select(0, pos_rel),
                            tail_emb.index_select(0, pos_tail))  # [n]
    positive = positive_term(g, w_pos, w_neg.index_select(0, pos_head))
    return positive + kg_allpairs_term(gram(rel_emb), weighted_gram(head_emb, w_neg), gram(tail_emb))


def nonsampling_kg_loss_bruteforce(
    head_emb: Tensor,
    rel_emb: Tensor,
    tail_emb: Tensor,
    pos_head: Tensor,
    pos_rel: Tensor,
    pos_tail: Tensor,
    w_pos: float,
    w_neg: Tensor,
) -> Tensor:
    """Σ over all B×R×T triples of ω(g − ĝ)², enumerated explicitly (tests/benchmarks only).

    Shapes as `nonsampling_kg_loss`.  Memory O(B·R·T).
    """
    ghat = torch.einsum("bd,rd,td->brt", head_emb, rel_emb, tail_emb)
    g = torch.zeros_like(ghat)
    g[pos_head, pos_rel, pos_tail] = 1.0
    w = w_neg.view(-1, 1, 1).expand_as(ghat).clone()
    w[pos_head, pos_rel, pos_tail] = w_pos
    return (w * (g - ghat) ** 2).sum()


def l2_sum(*tensors: Tensor) -> Tensor:
    """½ Σ ‖t‖² over the given tensors (TF `l2_loss` convention).  -> scalar."""
    total = tensors[0].new_zeros(())
    for t in tensors:
        total = total + 0.5 * (t * t).sum()
    return total
