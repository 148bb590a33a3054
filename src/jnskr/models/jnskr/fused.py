"""JNSKR's fused autograd op for the per-fact work of an item batch.

Each fact f = (v, r, t) of the batch's items feeds two things (docs/spec.md §2.3, §3.3):

* the attention message  m_v = Σ_f α_f x_t,  α = softmax_v(w_αᵀ ReLU(Wᵀ(z_r ∘ x_t) + b))  ("code" form)
* the positive part of the KG loss  Σ_f [(w⁺ − w⁻_v) ĝ_f² − 2 w⁺ ĝ_f],  ĝ_f = Σ_i e_vi z_ri x_ti

Both read z_r ∘ x_t.  `attention_and_kg_positive` computes that product once and writes the
backward pass by hand, in place where it can, so the [n_facts, d] passes of the generic autograd
graph (about twenty, forward and backward) drop to about a dozen.  Its plain-autograd twin
(`attention_and_kg_positive_reference`) is for tests and benchmarks; training never calls it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from jnskr.interactions import attention_logits, code_attention_hidden
from jnskr.losses import positive_term
from jnskr.ops import segment_softmax, segment_sum


class _AttentionKG(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, z, e, W, b, w, seg, ptr, n_items: int, w_pos: float, w_neg_f):
        zx = z * x
        r = code_attention_hidden(zx, W, b)  # ReLU(pre); pre > 0 ⇔ r > 0
        alpha = segment_softmax(r @ w, seg, n_items)
        msg = segment_sum(ptr, alpha, x)
        eg = e.index_select(0, seg)
        g = torch.linalg.vecdot(eg, zx)  # no [n, d] temporary
        positive = positive_term(g, w_pos, w_neg_f)
        ctx.save_for_backward(x, z, zx, r, alpha, eg, g, seg, ptr, w_neg_f, W, w)
        ctx.n_items, ctx.w_pos = n_items, w_pos
        return msg, positive

    @staticmethod
    def backward(ctx, d_msg, d_pos):
        x, z, zx, r, alpha, eg, g, seg, ptr, w_neg_f, W, w = ctx.saved_tensors
        n_items, w_pos = ctx.n_items, ctx.w_pos
        dg = d_pos * (2.0 * (w_pos - w_neg_f) * g - 2.0 * w_pos)  # [n]
        dmf = d_msg.index_select(0, seg)  # [n, d]
        d_alpha = torch.linalg.vecdot(dmf, x)
        dx = dmf.mul_(alpha.unsqueeze(1))  # ∂/∂x through the message
        # softmax within segments: ds = α (dα − Σ_seg α dα)
        t = alpha * d_alpha
        ds = t - alpha * t.new_zeros(n_items).index_add_(0, seg, t).index_select(0, seg)
        d_pre = torch.ops.aten.threshold_backward(torch.outer(ds, w), r, 0.0)  # ReLU's backward, [n, a]
        dW = zx.transpose(0, 1) @ d_pre
        db = d_pre.sum(0)
        dw = r.transpose(0, 1) @ ds
        dzx = (d_pre @ W.transpose(0, 1)).addcmul_(eg, dg.unsqueeze(1))  # attention + KG paths
        de = segment_sum(ptr, dg, zx)
        dx.addcmul_(dzx, z)
        dz = dzx.mul_(x)
        return dx, dz, de, dW, db, dw, None, None, None, None, None


def attention_and_kg_positive(x: Tensor, z: Tensor, e: Tensor, W: Tensor, b: Tensor, w: Tensor, seg: Tensor,
                              ptr: Tensor, n_items: int, w_pos: float, w_neg_f: Tensor) -> tuple[Tensor, Tensor]:
    """Messages and the KG loss's positive part of an item batch, in one op ("code" attention).

    Args:
        x, z: [n, d] tail and relation rows of the batch's facts (gathered by the caller).
        e: [B, d] head (item base) vectors for the KG loss (after its dropout).
        W: [d, a], b: [a], w: [a] the attention MLP.
        seg: [n] int64 batch row (0..B-1) of each fact, sorted (CSR order).
        ptr: [B+1] int64 row pointer of those segments (`csr_gather(..., with_ptr=True)`).
        n_items: B.
        w_pos: weight of an observed triple.
        w_neg_f: [n] weight of an unobserved triple for each fact's head (w⁻_v per fact).

    Returns:
        (msg [B, d] = Σ α x per item, zeros for items without facts,
         scalar Σ_f[(w_pos − w⁻)ĝ² − 2 w_pos ĝ]).
    """
    return _AttentionKG.apply(x, z, e, W, b, w, seg, ptr, n_items, w_pos, w_neg_f)


def attention_and_kg_positive_reference(x: Tensor, z: Tensor, e: Tensor, W: Tensor, b: Tensor, w: Tensor,
                                        seg: Tensor, ptr: Tensor, n_items: int, w_pos: float,
                                        w_neg_f: Tensor) -> tuple[Tensor, Tensor]:
    """Plain-autograd twin of `attention_and_kg_positive` (tests and benchmarks only)."""
    alpha = segment_softmax(attention_logits(x, z, {"W": W, "b": b, "w": w}, "code"), seg, n_items)
    msg = torch.zeros(n_items, x.shape[1], dtype=x.dtype, device=x.device).index_add(0, seg, alpha.unsqueeze(1) * x)
    g = (e[seg] * z * x).sum(1)
    return msg, positive_term(g, w_pos, w_neg_f)
