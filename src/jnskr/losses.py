"""Whole-data (non-sampling) losses of JNSKR, as pure functions on tensors.

Each efficient loss has a brute-force twin (`*_bruteforce`) that enumerates every pair or
triple.  The twins exist for tests and benchmarks only; training never calls them.

Both efficient losses drop a Θ-invariant constant (c⁺·n, respectively w⁺·n), so

    nonsampling_cf_loss(...) + c_pos * n  ==  nonsampling_cf_loss_bruteforce(...)
    nonsampling_kg_loss(...) + w_pos * n  ==  nonsampling_kg_loss_bruteforce(...)

in value and in gradient (the constant has none).  All functions work for any float dtype on
any device.  Positives must be unique pairs (triples); duplicates break the identity.

Notation (spec §3): the CF loss over an M x B block of (user, item) pairs is

    L = Σ_{u,v} ω_uv (y_uv − ŷ_uv)²,   ŷ_uv = hᵀ(p_u ∘ q_v),
    ω_uv = c_pos if (u,v) is positive else c_neg[v]

and is computed as

    Σ_pos [(c_pos − c_neg[v]) ŷ² − 2 c_pos ŷ]  +  ⟨ hhᵀ ∘ PᵀP ∘ Qᵀ diag(c_neg) Q ⟩.

The loss is symmetric in its two sides: for user batches pass the batch users as `item_emb`
and all items as `user_emb`.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "gram",
    "gram_with_rows",
    "weighted_gram",
    "nonsampling_cf_loss",
    "nonsampling_cf_loss_bruteforce",
    "nonsampling_kg_loss",
    "nonsampling_kg_loss_bruteforce",
    "l2_sum",
]


class _Gram(torch.autograd.Function):
    """S = xᵀx with the one-matmul backward ∂/∂x = x (G + Gᵀ) (autograd would use two)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x.transpose(0, 1) @ x

    @staticmethod
    def backward(ctx, g: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return x @ (g + g.transpose(0, 1))


def gram(x: Tensor) -> Tensor:
    """xᵀx.  x: [n, d] -> [d, d]."""
    if x.requires_grad and torch.is_grad_enabled():
        return _Gram.apply(x)
    return x.transpose(0, 1) @ x


class _GramWithRows(torch.autograd.Function):
    """(xᵀx, x[idx]) with one dense gradient: x (G + Gᵀ), into which the rows' gradients are
    index-added in place (autograd would zero-fill a second table-sized buffer and add the two)."""

    @staticmethod
    def forward(ctx, x: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        ctx.save_for_backward(x, idx)
        return x.transpose(0, 1) @ x, x.index_select(0, idx)

    @staticmethod
    def backward(ctx, g: Tensor, g_rows: Tensor):
        x, idx = ctx.saved_tensors
        out = x @ (g + g.transpose(0, 1))
        return out.index_add_(0, idx, g_rows), None


def gram_with_rows(x: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
    """(xᵀx, x[idx]) in one op.  x: [n, d], idx: [m] int64 -> ([d, d], [m, d]).

    Same values and gradients as `(gram(x), x.index_select(0, idx))`; cheaper backward for a
    table whose every row gets a gradient anyway (the all-pairs Gram term)."""
    if x.requires_grad and torch.is_grad_enabled():
        return _GramWithRows.apply(x, idx)
    return x.transpose(0, 1) @ x, x.index_select(0, idx)


def weighted_gram(x: Tensor, w: Tensor) -> Tensor:
    """xᵀ diag(w) x.  x: [n, d], w: [n] -> [d, d]."""
    return (x * w.unsqueeze(1)).transpose(0, 1) @ x


def nonsampling_cf_loss(
    user_emb: Tensor,
    item_emb: Tensor,
    h: Tensor,
    pos_user: Tensor,
    pos_item: Tensor,
    c_pos: float,
    c_neg: Tensor,
    user_gram: Tensor | None = None,
    *,
    user_rows: Tensor | None = None,
    batch_gram: Tensor | None = None,
    h_allpairs: Tensor | None = None,
    positive: Tensor | None = None,
) -> Tensor:
    """Efficient whole-data weighted squared CF loss (constant c_pos·n dropped).

    Args:
        user_emb: [M, d] the "all" side (every user; or every item for user batches).
        item_emb: [B, d] the batch side.
        h: [d] prediction vector.
        pos_user: [n] int64 rows of `user_emb` of the positive pairs.
        pos_item: [n] int64 rows of `item_emb` (0..B-1) of the positive pairs.
        c_pos: weight of a positive pair.
        c_neg: [B] weight of an unobserved pair, per batch row.
        user_gram: optional precomputed [d, d] `user_emb`ᵀ`user_emb`; when given, `user_emb` is
            only used for the positive term.
        user_rows: optional [n, d] = `user_emb[pos_user]`, gathered by the caller (distributed
            training routes these rows' gradients separately).
        batch_gram: optional [d, d] replacing `item_emb`ᵀdiag(c_neg)`item_emb` (distributed: the
            sum over every rank's share of the batch).
        h_allpairs: optional h used in the all-pairs term only (distributed: a detached copy on
            all ranks but one, so its replicated gradient is counted once).
        positive: optional precomputed positive part Σ_pos[(c_pos − c_neg[v])ŷ² − 2c_pos·ŷ] (from
            `jnskr.models.fused.cf_positive`); the positive arguments are then unused.

    Returns:
        scalar: Σ_pos[(c_pos − c_neg[v])ŷ² − 2c_pos·ŷ] + ⟨hhᵀ ∘ UᵀU ∘ Iᵀdiag(c_neg)I⟩.
    """
    if positive is None:
        pu = user_emb.index_select(0, pos_user) if user_rows is None else user_rows
        y = (pu * item_emb.index_select(0, pos_item)) @ h  # [n]
        cn = c_neg.index_select(0, pos_item)
        positive = ((c_pos - cn) * y * y - 2.0 * c_pos * y).sum()
    s_u = gram(user_emb) if user_gram is None else user_gram
    s_b = weighted_gram(item_emb, c_neg) if batch_gram is None else batch_gram
    ha = h if h_allpairs is None else h_allpairs
    # ⟨hhᵀ ∘ S_U ∘ S_B⟩ = hᵀ (S_U ∘ S_B) h
    allpairs = ha @ ((s_u * s_b) @ ha)
    return positive + allpairs


def nonsampling_cf_loss_bruteforce(
    user_emb: Tensor,
    item_emb: Tensor,
    h: Tensor,
    pos_user: Tensor,
    pos_item: Tensor,
    c_pos: float,
    c_neg: Tensor,
) -> Tensor:
    """Σ over all M×B pairs of ω(y − ŷ)², enumerated explicitly (tests/benchmarks only).

    Shapes as `nonsampling_cf_loss`.  Memory O(M·B).
    """
    yhat = (user_emb * h) @ item_emb.transpose(0, 1)  # [M, B]
    y = torch.zeros_like(yhat)
    y[pos_user, pos_item] = 1.0
    w = c_neg.unsqueeze(0).expand_as(yhat).clone()
    w[pos_user, pos_item] = c_pos
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
    rel_gram: Tensor | None = None,
    tail_gram: Tensor | None = None,
    *,
    rel_rows: Tensor | None = None,
    tail_rows: Tensor | None = None,
    head_gram: Tensor | None = None,
    positive: Tensor | None = None,
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
        rel_gram, tail_gram: optional precomputed [d, d] Gram matrices of `rel_emb`/`tail_emb`.
        rel_rows, tail_rows: optional [n, d] = `rel_emb[pos_rel]`, `tail_emb[pos_tail]`.
        head_gram: optional [d, d] replacing E_Bᵀdiag(w_neg)E_B (distributed: summed over ranks).
        positive: optional precomputed positive part Σ_pos[(w_pos − w_neg[h])ĝ² − 2w_pos·ĝ] (from
            `jnskr.models.fused.attention_and_kg_positive`); the positive arguments are then unused.

    Returns:
        scalar: Σ_pos[(w_pos − w_neg[h])ĝ² − 2w_pos·ĝ] + ⟨ZᵀZ ∘ E_Bᵀ diag(w_neg) E_B ∘ XᵀX⟩,
        with ĝ = Σ_i e_hi z_ri x_ti.
    """
    if positive is None:
        zr = rel_emb.index_select(0, pos_rel) if rel_rows is None else rel_rows
        xt = tail_emb.index_select(0, pos_tail) if tail_rows is None else tail_rows
        g = torch.linalg.vecdot(head_emb.index_select(0, pos_head) * zr, xt)  # [n]
        wn = w_neg.index_select(0, pos_head)
        positive = ((w_pos - wn) * g * g - 2.0 * w_pos * g).sum()
    s_r = gram(rel_emb) if rel_gram is None else rel_gram
    s_t = gram(tail_emb) if tail_gram is None else tail_gram
    s_h = weighted_gram(head_emb, w_neg) if head_gram is None else head_gram
    allpairs = (s_r * s_h * s_t).sum()
    return positive + allpairs


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
