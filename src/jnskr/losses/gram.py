"""Gram matrices of embedding tables as autograd ops with cheap backward passes.

The all-pairs terms of the whole-data losses read each table only through its d×d Gram matrix
(docs/spec.md §3.2-§3.3, docs/spec.md), so every table row gets a gradient at every step.  These ops
compute the Gram (and the rows a batch gathers) with one dense gradient per table.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
