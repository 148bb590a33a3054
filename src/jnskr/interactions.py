"""Interaction functions: the model formulas as small pure functions (docs/spec.md §2).

Every place that evaluates a formula calls it from here: the models' batch forward and scoring,
the fused kernels of `jnskr.losses.fused` and `jnskr.models.jnskr.fused` (their forward), and the explanations.

    ŷ_uv  = hᵀ(p_u ∘ q_v)                                   (`mf_scores`)
    s(r,t) = w_αᵀ ReLU(Wᵀ(z_r ∘ x_t) + b)          "code"   (`attention_logits`)
    s(r,t) = w_αᵀ ReLU(W₁ᵀx_t + W₂ᵀz_r + b)         "paper"
    s(r,t) = 0 (uniform weights 1/|𝒩(v)|)           "mean"  (ablation)
"""

from __future__ import annotations

import torch
from torch import Tensor

from jnskr.ops import matmul_nt

ATTENTION_FORMS = ("code", "paper", "mean")


def code_attention_hidden(zx: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """ReLU(Wᵀ(z ∘ x) + b) of the "code" form from the product zx = z ∘ x.

    Args: zx [n, d]; W [d, a]; b [a].  Returns: [n, a] (a fresh tensor: callers may keep it)."""
    return torch.addmm(b, zx, W).clamp_min_(0.0)


def attention_logits(x: Tensor, z: Tensor, params: dict[str, Tensor], form: str) -> Tensor:
    """Unnormalised attention s(r, t) of facts from their tail and relation rows.

    Args:
        x: [n, d] tail vectors x_t; z: [n, d] relation vectors z_r.
        params: the attention MLP: ``W`` [d, a] (code form) or ``W1``, ``W2`` [d, a] (paper
            form), ``b`` [a], ``w`` [a].
        form: "code", "paper" or "mean".
    Returns: [n] (softmax them within each item with `jnskr.ops.segment_softmax`).
    """
    if form == "mean":  # equal logits: the softmax gives 1/|𝒩(v)|
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    if form == "code":
        hidden = code_attention_hidden(z * x, params["W"], params["b"])
    elif form == "paper":
        hidden = torch.relu(x @ params["W1"] + z @ params["W2"] + params["b"])
    else:
        raise ValueError(f"attention form must be one of {ATTENTION_FORMS}, not {form!r}")
    return hidden @ params["w"]


def mf_scores(p: Tensor, h: Tensor, q: Tensor, out: Tensor | None = None) -> Tensor:
    """ŷ_uv = hᵀ(p_u ∘ q_v) for every pair of rows: (p ∘ h) qᵀ, into `out` when given (a reused
    buffer; `jnskr.ops.matmul_nt`, without autograd).  p: [n, d]; h: [d]; q: [m, d] -> [n, m].

    >>> mf_scores(torch.ones(1, 2), torch.tensor([1., 2.]), torch.eye(2)).tolist()
    [[1.0, 2.0]]
    """
    ph = p * h
    if out is None and torch.is_grad_enabled() and (ph.requires_grad or q.requires_grad):
        return ph @ q.T  # differentiable (the brute-force twins' gradients); matmul_nt is not
    return matmul_nt(ph, q, out)
