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


class _WeightedGram(torch.autograd.Function):
    """S = xᵀ diag(w) x with the one-matmul backward ∂/∂x = diag(w) x (G + Gᵀ); w is a constant."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor) -> Tensor:
        ctx.save_for_backward(x, w)
        return (x * w.unsqueeze(1)).transpose(0, 1) @ x

    @staticmethod
    def backward(ctx, g: Tensor):
        x, w = ctx.saved_tensors
        return (x @ (g + g.transpose(0, 1))) * w.unsqueeze(1), None


def weighted_gram(x: Tensor, w: Tensor) -> Tensor:
    """xᵀ diag(w) x.  x: [n, d], w: [n] (a constant: no gradient flows into it) -> [d, d]."""
    if x.requires_grad and torch.is_grad_enabled():
        return _WeightedGram.apply(x, w.detach())
    return (x * w.unsqueeze(1)).transpose(0, 1) @ x


class _WeightedGramsWithRows(torch.autograd.Function):
    """(xᵀdiag(w_1)x, …, x[idx]) with one dense gradient Σ_i diag(w_i) x (G_i + G_iᵀ), into which
    the rows' gradients are index-added in place (autograd would zero-fill one table-sized buffer
    per gather and add them up)."""

    @staticmethod
    def forward(ctx, x: Tensor, idx: Tensor, *ws: Tensor):
        ctx.save_for_backward(x, idx, *ws)
        return (*[(x * w.unsqueeze(1)).transpose(0, 1) @ x for w in ws], x.index_select(0, idx))

    @staticmethod
    def backward(ctx, *grads):
        x, idx, *ws = ctx.saved_tensors
        out = None
        for g, w in zip(grads[:-1], ws):
            if g is None:
                continue
            part = (x @ (g + g.transpose(0, 1))) * w.unsqueeze(1)
            out = part if out is None else out.add_(part)
        if out is None:
            out = torch.zeros_like(x)
        if grads[-1] is not None:
            out.index_add_(0, idx, grads[-1])
        return (out, None, *([None] * len(ws)))


def weighted_grams_with_rows(x: Tensor, idx: Tensor, weights: list[Tensor]) -> tuple[list[Tensor], Tensor]:
    """([xᵀdiag(w)x for w in weights], x[idx]) in one op.  x: [n, d], idx: [m] int64, weights: [n]
    each (constants) -> ([d, d]…, [m, d]).  Same values and gradients as the separate
    `weighted_gram`s and the gather: the weighted form of `gram_with_rows` (a table that plays
    several roles with their own weights, `jnskr.kg`)."""
    ws = [w.detach() for w in weights]
    if x.requires_grad and torch.is_grad_enabled():
        out = _WeightedGramsWithRows.apply(x, idx, *ws)
    else:
        out = (*[(x * w.unsqueeze(1)).transpose(0, 1) @ x for w in ws], x.index_select(0, idx))
    return list(out[:-1]), out[-1]
