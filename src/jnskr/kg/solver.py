"""Closed-form block steps: the exact minimiser of F over one table, the others fixed.

A table that plays a single role (`ModelSpec.exact_roles`: relations of DistMult/ComplEx; the
head, relation and tail tables of CP) enters every score linearly, ĝ = x_i · φ, with φ built
from the two other roles' rows (`role_query`).  With an L2 regulariser F is then a separate
convex quadratic in each row x_i of the table::

    F_i(x) = Σ_{pos∋i} [(c⁺ − c⁻)(x·φ)² − 2c⁺ x·φ]  +  w_i · xᵀ K x  +  λρ_i · ½‖x‖²

where w_i is the row's own factor of c⁻ (a_h, b_r or g_t), K = `role_matrix` of the two other
roles' weighted Grams (Σ over their rows of weight·φφᵀ, d×d or 2d×2d), and ρ_i is 1 (uniform
weighting) or the row's frequency in its role.  Setting ∇F_i = 0::

    (Σ_{pos∋i} (c⁺ − c⁻) φφᵀ  +  w_i K  +  ½λρ_i I) x_i  =  c⁺ Σ_{pos∋i} φ

The matrix is Σ over *all* triples of the row of ω φφᵀ (ω ≥ 0) plus ½λρ_i I, hence positive
semidefinite: Cholesky, with a least-squares fallback where it is singular (λ = 0, unseen rows).
Cost per block: O(|T⁺| D² + rows · D³) with D = blocks · d; solved in float64 in row chunks.
"""

from __future__ import annotations

import torch
from torch import Tensor

from jnskr.kg.losses import role_matrix, role_query
from jnskr.losses.gram import weighted_gram
from jnskr.kg.objective import Objective

__all__ = ["solve_block", "block_systems"]


def _check(obj: Objective, role: int) -> None:
    if role not in obj.spec.exact_roles():
        raise ValueError(f"F is not quadratic in the {obj.spec.roles[role]} table of {obj.spec.name} "
                         f"(it plays more than one role): use first-order steps there")
    if obj.lam > 0 and obj.reg != "l2":
        raise ValueError("closed-form block steps need the l2 regulariser")


def _grams(obj: Objective, X: list[Tensor], w: list[Tensor], role: int) -> tuple[Tensor, Tensor]:
    others = [i for i in range(3) if i != role]
    g1 = weighted_gram(X[others[0]], w[others[0]])
    same = X[others[1]] is X[others[0]] and torch.equal(w[others[1]], w[others[0]])
    g2 = g1 if same else weighted_gram(X[others[1]], w[others[1]])
    return g1, g2


def block_systems(obj: Objective, tables: dict[str, Tensor], role: int, rows: Tensor | None = None
                  ) -> tuple[Tensor, Tensor]:
    """(A [n, D, D], rhs [n, D]) of the normal equations of `rows` (default all) of the table in
    `role`, in float64.  For tests and small tables; `solve_block` builds them in chunks."""
    _check(obj, role)
    ctx = _Context(obj, tables, role)
    rows = torch.arange(ctx.n_rows) if rows is None else rows
    return ctx.systems(rows)


class _Context:
    def __init__(self, obj: Objective, tables: dict[str, Tensor], role: int):
        dt = torch.float64
        self.obj, self.role = obj, role
        self.X = [t.detach().to(dt) for t in obj.spec.role_tables(tables)]
        self.w = [obj.a.to(dt), obj.b.to(dt), obj.g.to(dt)]
        self.others = [i for i in range(3) if i != role]
        self.K = role_matrix(obj.spec.form, role, *_grams(obj, self.X, self.w, role))
        self.n_rows = self.X[role].shape[0]
        idx = obj.pos[:, role]
        self.order = torch.argsort(idx, stable=True)
        counts = torch.bincount(idx, minlength=self.n_rows)
        self.starts = torch.zeros(self.n_rows + 1, dtype=torch.long)
        self.starts[1:] = torch.cumsum(counts, 0)
        if obj.lam == 0.0:
            self.rho = torch.zeros(self.n_rows, dtype=dt)
        elif obj.weighting == "frequency":
            self.rho = counts.to(dt)
        else:
            self.rho = torch.ones(self.n_rows, dtype=dt)

    def systems(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        obj, D = self.obj, self.K.shape[0]
        eye = torch.eye(D, dtype=self.K.dtype)
        A = self.w[self.role].index_select(0, rows).view(-1, 1, 1) * self.K + \
            (0.5 * obj.lam * self.rho.index_select(0, rows)).view(-1, 1, 1) * eye
        rhs = torch.zeros(rows.shape[0], D, dtype=self.K.dtype)
        for j, i in enumerate(rows.tolist()):
            s, e = int(self.starts[i]), int(self.starts[i + 1])
            if s == e:
                continue
            p = obj.pos.index_select(0, self.order[s:e])
            o0, o1 = self.others
            phi = role_query(obj.spec.form, self.role, self.X[o0].index_select(0, p[:, o0]),
                             self.X[o1].index_select(0, p[:, o1]))
            cn = self.w[0].index_select(0, p[:, 0]) * self.w[1].index_select(0, p[:, 1]) * \
                self.w[2].index_select(0, p[:, 2])
            A[j] += phi.transpose(0, 1) @ (phi * (obj.c_pos - cn).unsqueeze(1))
            rhs[j] = obj.c_pos * phi.sum(0)
        return A, rhs


def _solve(A: Tensor, rhs: Tensor) -> Tensor:
    L, info = torch.linalg.cholesky_ex(A)
    x = torch.cholesky_solve(rhs.unsqueeze(-1), L).squeeze(-1)
    bad = torch.nonzero(info).flatten()
    if bad.numel():
        x[bad] = (torch.linalg.pinv(A[bad], hermitian=True) @ rhs[bad].unsqueeze(-1)).squeeze(-1)
    return x


@torch.no_grad()
def solve_block(obj: Objective, tables: dict[str, Tensor], role: int, *, memory_mb: float = 256.0) -> Tensor:
    """The exact minimiser of F over the table in `role` (others fixed), in that table's dtype.

    Rows are independent; they are solved in chunks of at most `memory_mb` of float64 systems.
    """
    _check(obj, role)
    ctx = _Context(obj, tables, role)
    D = ctx.K.shape[0]
    per = max(1, int(memory_mb * 2**20 // (8 * D * D)))
    out = torch.empty(ctx.n_rows, D, dtype=torch.float64)
    for s in range(0, ctx.n_rows, per):
        rows = torch.arange(s, min(s + per, ctx.n_rows))
        A, rhs = ctx.systems(rows)
        out[s:s + rows.shape[0]] = _solve(A, rhs)
    name = obj.spec.roles[role]
    return out.to(tables[name].dtype)
