"""Exact ALS sweeps of the MF family (`train.solver: als`; docs/solver.md).

One sweep replaces one epoch.  It minimises the same objective F as the first-order solver —
the whole-data CF loss with its dropout in expectation (`jnskr.models.mf.problem`) plus the L2
term — exactly over users, items and h (when learned), each in closed form (weighted ALS with
per-item negative weights, a dropout diagonal and the per-row ridge `reg`): at ``h: fixed``
without dropout this is implicit's ALS (docs/solver.md, "The iALS point").

Units of F: the L2 weight is λ_emb × (batches per epoch), what the per-batch weight decay of the
first-order solver applies over one epoch, so a preset means the same objective under both.  The
ridge ``reg`` (λ Σ_i s_i‖θ_i‖², `jnskr.training.weights.row_ridge`) is in F's own units.

Each row block is solved exactly (Cholesky) or by warm-started conjugate gradient
(`train.block_solver`, `jnskr.training.blocks.solve_block`; `auto`: cg above d = 32).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from jnskr import stop
from jnskr.models.mf.problem import CFProblem
from jnskr.training.blocks import block_method


def dropout_odds(keep: float) -> float:
    """ρ/(1−ρ) for a keep probability 1−ρ: Var of inverted dropout per unit of x²."""
    return (1.0 - keep) / keep


def batches_per_epoch(n_units: int, batch_size: int) -> int:
    return max(1, math.ceil(n_units / batch_size))


class MFSweeps:
    """Exact ALS sweeps of an MF model with h (ENMF): ŷ = hᵀ(p ∘ q), dropout on one side."""

    first_order = False

    def __init__(self, model, train, cfg, batch_size: int, block_solver: str = "cholesky", cg_steps: int = 3):
        self.model = model
        n_units = train.n_users if cfg.weighting == "uniform" else train.n_items
        self.lam = cfg.lambda_emb * batches_per_epoch(n_units, batch_size)
        c_neg = model.fold_in_terms(train.item_counts()).c_neg  # the run's c⁻_v (uniform or popularity)
        self.problem = CFProblem(train, 1.0, c_neg, model.device, cfg.alpha,
                                 block_method(block_solver, cfg.embed_dim), cg_steps)
        self.rho = dropout_odds(cfg.keep_prob)
        self.learn_h = cfg.h == "learned"
        self.reg = float(cfg.reg)
        r_user, r_item = self.problem.ridges(cfg.reg, cfg.reg_exponent)
        self.ridge_user, self.ridge_item = r_user + self.lam / 2, r_item + self.lam / 2

    def exact_params(self) -> list[Tensor]:
        m = self.model
        return [m.user_emb, m.item_emb] + ([m.h] if self.learn_h else [])

    def param_groups(self) -> list[dict]:
        return []

    def sigma(self, q: Tensor) -> Tensor | None:
        return self.rho * q.double() ** 2 if self.rho else None

    @torch.no_grad()
    def sweep(self, epoch: int) -> None:
        m, pr = self.model, self.problem
        m.user_emb.copy_(pr.solve_users(m.item_emb, m.h, self.sigma(m.item_emb), self.ridge_user, m.user_emb))
        stop.boundary()  # a prompt stop between blocks: the trainer discards the unfinished sweep
        s_user = self.rho * (m.h.double() ** 2) * m.user_emb.double() ** 2 if self.rho else None
        m.item_emb.copy_(pr.solve_items(m.user_emb, m.h, s_user, self.ridge_item, m.item_emb))
        stop.boundary()
        if self.learn_h:
            m.h.copy_(pr.solve_h(m.user_emb, m.item_emb, self.sigma(m.item_emb), self.reg))

    @torch.no_grad()
    def value(self) -> float:
        """F = F_CF + Σ_u ρ_u‖p_u‖² + Σ_v ρ_v‖q_v‖² (+ reg·‖h‖² when h is learned); ρ = λ/2 + the
        row's `reg` ridge."""
        m = self.model
        l2 = float(self.ridge_user @ (m.user_emb.double() ** 2).sum(1) + self.ridge_item @ (m.item_emb.double() ** 2).sum(1))
        if self.learn_h:
            l2 += self.reg * float((m.h.double() ** 2).sum())
        return self.problem.value(m.user_emb, m.item_emb, m.h, self.sigma(m.item_emb)) + l2
