"""The whole-data CF objective of the MF family as exact blocks (`train.solver: als`; docs/solver.md).

The CF part of the objective both solvers minimise, with its training dropout in expectation:

    F_CF = Σ_u Σ_v ω_uv [ (y_uv − ŷ_uv)² + Σ_k h_k² p_uk² σ_vk ],   ŷ_uv = hᵀ(p_u ∘ q_v)

ω = c⁺_uv on training pairs (c⁺ = c_pos, or c_pos · value_uv under ``data.weight: confidence``;
`jnskr.training.weights.positive_weights`) and c⁻_v elsewhere; σ_v the variance that dropout adds to q_v (JNSKR:
ρ_e/(1−ρ_e)·e_v² + ρ_k/(1−ρ_k)·m_v²; ENMF and LightGCN, whose dropout is on one side of the
product: ρ/(1−ρ)·q_v², the same term).  Inverted dropout is unbiased, so this is exactly the
expected loss a sampled mask gives (`E (y − pᵀ(h∘q̃))² = (y − ŷ)² + Σ p²h²Var(q̃)`).

F_CF is quadratic in each user p_u, in each item vector (given the others) and in h.
`CFProblem` holds the data (CSR both ways, weights) and solves those blocks through
`jnskr.training.blocks`; `cf_value` evaluates F_CF through Gram matrices and
`cf_value_bruteforce` enumerates every pair (tests only).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from jnskr.interactions import mf_scores
from jnskr.losses.gram import gram, weighted_gram
from jnskr.training.blocks import Term, solve_block, term_sums
from jnskr.training.weights import block_ridges, positive_weights, scalar_positive_weight


class CFProblem:
    """Training pairs as CSR over users and over items, with c⁺ and c⁻_v (float64, on `device`).

    c⁺ is one scalar (`cp_user` and `cp_item` None): `c_pos`, or c_pos·(1 + α) with a confidence
    slope `alpha`; or, when `train.values` are confidences other than all ones, one per pair
    (`jnskr.training.weights.positive_weights`): `cp_user` [nnz] in the user CSR's order,
    `cp_item` [nnz] in the item CSR's.  `method`/`steps`: how the row blocks are solved
    (`jnskr.training.blocks.solve_block`: cholesky, or cg warm-started from the current rows)."""

    def __init__(self, train, c_pos: float, c_neg: np.ndarray, device, alpha: float | None = None,
                 method: str = "cholesky", steps: int = 3):
        by_item = train.transpose()
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long, device=device)  # noqa: E731
        self.u_ptr, self.u_idx = t(train.indptr), t(train.indices)  # users -> items
        self.i_ptr, self.i_idx = t(by_item.indptr), t(by_item.indices)  # items -> users
        self.n_users, self.n_items = train.n_users, train.n_items
        self.c_pos = scalar_positive_weight(c_pos, alpha)
        self.c_neg = torch.as_tensor(np.asarray(c_neg, dtype=np.float64), device=device)
        f64 = lambda a: None if a is None else torch.as_tensor(a, dtype=torch.float64, device=device)  # noqa: E731
        self.cp_user = f64(positive_weights(train.values, c_pos, alpha))
        self.cp_item = f64(positive_weights(by_item.values, c_pos, alpha))
        self.method, self.steps = method, steps
        self.train = train
        cp_user = self.c_pos if self.cp_user is None else self.cp_user
        i_deg = self.i_ptr[1:] - self.i_ptr[:-1]
        self.w_user = cp_user - self.c_neg.index_select(0, self.u_idx)  # c⁺ − c⁻ per entry of the user CSR
        if self.cp_item is None:
            self.w_item = torch.repeat_interleave(self.c_pos - self.c_neg, i_deg)
        else:
            self.w_item = self.cp_item - torch.repeat_interleave(self.c_neg, i_deg)
        self.pair_users = torch.repeat_interleave(torch.arange(self.n_users, device=device),
                                                  self.u_ptr[1:] - self.u_ptr[:-1])
        self.n_pairs = len(self.u_idx)

    def ridges(self, reg: float, exponent: float) -> tuple[Tensor, Tensor]:
        """The per-row ridges of the user and the item block (`block_ridges`).  -> float64 ([M], [N])."""
        f64 = lambda a: torch.as_tensor(a, dtype=torch.float64, device=self.c_neg.device)  # noqa: E731
        users, items = block_ridges(reg, exponent, self.train, self.c_neg.cpu().numpy())
        return f64(users), f64(items)

    def _solve(self, n, shared, terms, diag, ridge, rhs, dtype, x0):
        return solve_block(n, shared, terms, diag, ridge, rhs, dtype, x0, self.method, self.steps)

    # ------------------------------------------------------------------ blocks
    def solve_users(self, q: Tensor, h: Tensor, sigma: Tensor | None, ridge, x0: Tensor | None = None) -> Tensor:
        """argmin over every p_u of F_CF (+ ridge_u·‖p_u‖²) given q [N, d], h, σ [N, d] (or None);
        `ridge` a float or float64 [M]; x0 [M, d] the current rows (the start of cg)."""
        z = q * h  # [N, d] in the tables' dtype (gathered per row); the systems are float64
        z64 = z.double()
        G = weighted_gram(z64, self.c_neg)
        pos = Term(self.u_ptr, self.u_idx, z, self.w_user)
        diag = None
        if sigma is not None:
            s = sigma.double() * h.double() ** 2  # [N, d]
            base = (self.c_neg.unsqueeze(1) * s).sum(0)
            diag = base + term_sums(Term(self.u_ptr, self.u_idx, s, self.w_user), torch.arange(self.n_users,
                                                                                              device=z.device),
                                    self.w_user)
        return self._solve(self.n_users, [(G, None)], [pos], diag, ridge, self._rhs(pos, self.cp_user), q.dtype, x0)

    def _rhs(self, pos: Term, cp: Tensor | None, scale: float = 1.0):
        """rows -> scale · Σ_{entries k of the row} c⁺_k o_k (the right-hand side of a block)."""
        if cp is None:
            return lambda rows: scale * self.c_pos * term_sums(pos, rows)
        return lambda rows: scale * term_sums(pos, rows, cp)

    def item_system(self, p: Tensor, h: Tensor, s_user: Tensor | None, scale: float = 1.0):
        """The CF part of each item's system in its vector q_v, given P and h:
        (shared [(G, c⁻)], terms, diagonal [N, d] or None, rhs(rows)) all scaled by `scale`.
        `s_user` [M, d]: the per-user diagonal coefficient of the item-side dropout term."""
        x = p * h  # [M, d]
        x64 = x.double()
        G = scale * gram(x64)
        terms = [Term(self.i_ptr, self.i_idx, x, scale * self.w_item)]
        diag = None
        rows_all = torch.arange(self.n_items, device=x.device)
        if s_user is not None:
            s = s_user.double()
            diag = scale * (self.c_neg.unsqueeze(1) * s.sum(0) + term_sums(Term(self.i_ptr, self.i_idx, s,
                                                                                self.w_item), rows_all, self.w_item))
        pos = Term(self.i_ptr, self.i_idx, x, self.w_item)
        return [(G, self.c_neg)], terms, diag, self._rhs(pos, self.cp_item, scale), x

    def solve_items(self, p: Tensor, h: Tensor, s_user: Tensor | None, ridge, x0: Tensor | None = None) -> Tensor:
        shared, terms, diag, rhs, _ = self.item_system(p, h, s_user)
        return self._solve(self.n_items, shared, terms, diag, ridge, rhs, p.dtype, x0)

    def solve_h(self, p: Tensor, q: Tensor, sigma: Tensor | None, ridge: float = 0.0) -> Tensor:
        """argmin over h of F_CF + ridge·‖h‖².  -> [d]."""
        P, Q = p.double(), q.double()
        A = gram(P) * weighted_gram(Q, self.c_neg)
        b = torch.zeros(P.shape[1], dtype=torch.float64, device=P.device)
        sig = sigma.to(p.dtype) if sigma is not None else None
        for lo in range(0, self.n_pairs, 1 << 16):  # the pairs' products in the tables' dtype, sums in float64
            sl = slice(lo, lo + (1 << 16))
            pu = p.index_select(0, self.pair_users[sl])
            pq = pu * q.index_select(0, self.u_idx[sl])
            w = self.w_user[sl].to(p.dtype).unsqueeze(1)
            A += weighted_gram(pq, w[:, 0]).double()
            if self.cp_user is None:
                b += self.c_pos * pq.sum(0).double()
            else:
                b += (pq * self.cp_user[sl].to(p.dtype).unsqueeze(1)).sum(0).double()
            if sig is not None:
                A.diagonal().add_((w * pu * pu * sig.index_select(0, self.u_idx[sl])).sum(0).double())
        if sigma is not None:
            A.diagonal().add_((P ** 2).sum(0) * (self.c_neg.unsqueeze(1) * sigma.double()).sum(0))
        A.diagonal().add_(ridge)
        return torch.linalg.solve(A, b).to(p.dtype)

    # ------------------------------------------------------------------- value
    def value(self, p: Tensor, q: Tensor, h: Tensor, sigma: Tensor | None) -> float:
        """F_CF (module docstring), through Gram matrices."""
        P, Q, H = p.double(), q.double(), h.double()
        pu = p.index_select(0, self.pair_users)  # per-pair gathers in the tables' dtype, sums in float64
        y = ((pu * q.index_select(0, self.u_idx)) @ h).double()
        cp = self.c_pos if self.cp_user is None else self.cp_user
        const = self.c_pos * self.n_pairs if self.cp_user is None else self.cp_user.sum()  # Σ c⁺ over the pairs
        out = (self.w_user * y * y - 2 * cp * y).sum() + const
        out += H @ ((gram(P) * weighted_gram(Q, self.c_neg)) @ H)
        if sigma is not None:
            S = sigma.double()
            h2 = H * H
            out += (h2 * (P ** 2).sum(0) * (self.c_neg.unsqueeze(1) * S).sum(0)).sum()
            p2s = (pu ** 2 * sigma.to(p.dtype).index_select(0, self.u_idx)) @ (h * h)
            out += (self.w_user * p2s.double()).sum()
        return float(out)


def cf_value_bruteforce(p: Tensor, q: Tensor, h: Tensor, sigma: Tensor | None, train, c_pos: float,
                        c_neg: Tensor, alpha: float | None = None) -> Tensor:
    """F_CF enumerated over every (user, item) pair (tests and benchmarks only); a training pair
    weighs c_pos · its value when `train.values` is set, c_pos · (1 + α · value) with `alpha`.
    -> scalar."""
    yhat = mf_scores(p, h, q)  # [M, N]
    users, items = train.pairs()
    y = torch.zeros_like(yhat)
    y[users, items] = 1.0
    w = c_neg.unsqueeze(0).expand_as(yhat).clone()
    r = torch.ones(len(users), dtype=w.dtype) if train.values is None else torch.as_tensor(train.values, dtype=w.dtype)
    w[users, items] = c_pos * r if alpha is None else c_pos * (1 + alpha * r)
    loss = w * (y - yhat) ** 2
    if sigma is not None:
        loss = loss + w * ((p * p * h * h) @ sigma.T)
    return loss.sum()
