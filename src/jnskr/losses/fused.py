"""The fused autograd op of the whole-data CF loss's positive part (every whole-data model).

`cf_positive` computes Σ over a batch's (user, item) pairs of [(c⁺ − c⁻_v) ŷ² − 2 c⁺ ŷ] with a
hand-written backward pass, in place where it can.  Its plain-autograd twin
(`cf_positive_reference`) is for tests and benchmarks; training never calls it.  JNSKR's fused
attention + KG positive op lives with the model (`jnskr.models.jnskr.fused`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from jnskr.losses import positive_term
from jnskr.ops import segment_sum


class _CFPositive(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pu, q, h, seg, ptr, c_pos, c_neg_f):
        qg = (q * h).index_select(0, seg)  # (q_v ∘ h) for each positive pair
        y = torch.linalg.vecdot(pu, qg)
        positive = positive_term(y, c_pos, c_neg_f)
        per_pair = isinstance(c_pos, Tensor)
        ctx.save_for_backward(pu, q, h, qg, y, ptr, c_neg_f, *([c_pos] if per_pair else []))
        ctx.c_pos = None if per_pair else c_pos
        return positive

    @staticmethod
    def backward(ctx, d_pos):
        pu, q, h, qg, y, ptr, c_neg_f, *per_pair = ctx.saved_tensors
        c_pos = per_pair[0] if per_pair else ctx.c_pos
        dy = d_pos * (2.0 * (c_pos - c_neg_f) * y - 2.0 * c_pos)  # [n]
        d_pu = qg * dy.unsqueeze(1)
        d_qh = segment_sum(ptr, dy, pu)  # Σ_pairs of v: dy p_u, [B, d]
        return d_pu, d_qh * h, (d_qh * q).sum(0), None, None, None, None



def cf_positive(pu: Tensor, q: Tensor, h: Tensor, seg: Tensor, ptr: Tensor, c_pos: float | Tensor,
                c_neg_f: Tensor) -> Tensor:
    """The CF loss's positive part Σ_pairs[(c⁺ − c⁻_v)ŷ² − 2c⁺ŷ], ŷ = hᵀ(p_u ∘ q_v), in one op.

    Args:
        pu: [n, d] user rows of the positive pairs (gathered by the caller).
        q: [B, d] batch item vectors.
        h: [d] prediction vector.
        seg, ptr: [n] batch row of each pair (sorted) and its row pointer [B+1].
        c_pos: weight of a positive pair: a scalar, or [n] one per pair (c⁺_uv, no gradient).
        c_neg_f: [n] weight of an unobserved pair for each pair's item (c⁻_v per pair).

    Returns:
        scalar, as the positive part of `jnskr.losses.positive_term` over the pairs.
    """
    return _CFPositive.apply(pu, q, h, seg, ptr, c_pos, c_neg_f)



def cf_positive_reference(pu: Tensor, q: Tensor, h: Tensor, seg: Tensor, ptr: Tensor, c_pos: float | Tensor,
                          c_neg_f: Tensor) -> Tensor:
    """Plain-autograd twin of `cf_positive` (tests and benchmarks only)."""
    y = (pu * q[seg]) @ h  # ŷ of each positive pair
    return positive_term(y, c_pos, c_neg_f)
