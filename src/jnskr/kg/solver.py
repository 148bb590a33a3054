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
semidefinite.  These are the recommender's block systems (`jnskr.training.blocks`): one shared
matrix K weighted by w_i, one observed-entry `Term` (the entries' φ with weights c⁺ − c⁻), the
ridge ½λρ_i; they are solved by its row solver `solve_rows` (float64, batched Cholesky, the
least-squares solution where a system is singular: λ = 0, unseen rows).  Cost per block:
O(|T⁺| D² + rows · D³) with D = blocks · d; the entries' φ are built for chunks of rows.
"""

from __future__ import annotations

import torch
from torch import Tensor

from jnskr.kg.losses import role_matrix, role_query
from jnskr.kg.objective import Objective
from jnskr.losses.gram import weighted_gram
from jnskr.training.blocks import Term, row_grams, solve_rows, term_sums

__all__ = ["solve_block", "block_systems"]


def _check(obj: Objective, role: int) -> None:
    if role not in obj.spec.exact_roles():
        raise ValueError(f"F is not quadratic in the {obj.spec.roles[role]} table of {obj.spec.name} "
                         f"(it plays more than one role): use first-order steps there")
    if obj.lam > 0 and obj.reg != "l2":
        raise ValueError("closed-form block steps need the l2 regulariser")


class _Block:
    """The block systems of the table in `role` (module docstring), in float64."""

    def __init__(self, obj: Objective, tables: dict[str, Tensor], role: int):
        dt = torch.float64
        self.obj, self.role = obj, role
        self.X = [t.detach().to(dt) for t in obj.spec.role_tables(tables)]
        self.w = [obj.a.to(dt), obj.b.to(dt), obj.g.to(dt)]
        self.others = [i for i in range(3) if i != role]
        o0, o1 = self.others
        g1 = weighted_gram(self.X[o0], self.w[o0])
        same = self.X[o1] is self.X[o0] and torch.equal(self.w[o1], self.w[o0])
        self.K = role_matrix(obj.spec.form, role, g1, g1 if same else weighted_gram(self.X[o1], self.w[o1]))
        self.n_rows = self.X[role].shape[0]
        idx = obj.pos[:, role]
        self.order = torch.argsort(idx, stable=True)
        counts = torch.bincount(idx, minlength=self.n_rows)
        self.starts = torch.zeros(self.n_rows + 1, dtype=torch.long)
        self.starts[1:] = torch.cumsum(counts, 0)
        self.ridge: Tensor | float = 0.0  # ½λρ_i
        if obj.lam != 0.0:
            rho = counts.to(dt) if obj.weighting == "frequency" else torch.ones(self.n_rows, dtype=dt)
            self.ridge = 0.5 * obj.lam * rho

    def term(self, lo: int, hi: int) -> Term:
        """The observed entries of rows lo..hi-1 (row lo is row 0 of the term): φ and c⁺ − c⁻."""
        s, e = int(self.starts[lo]), int(self.starts[hi])
        p = self.obj.pos.index_select(0, self.order[s:e])
        o0, o1 = self.others
        phi = role_query(self.obj.spec.form, self.role, self.X[o0].index_select(0, p[:, o0]),
                         self.X[o1].index_select(0, p[:, o1]))
        cn = self.w[0].index_select(0, p[:, 0]) * self.w[1].index_select(0, p[:, 1]) * \
            self.w[2].index_select(0, p[:, 2])
        return Term(self.starts[lo:hi + 1] - s, torch.arange(e - s), phi, self.obj.c_pos - cn)

    def ridge_of(self, lo: int, hi: int) -> Tensor | float:
        return self.ridge[lo:hi] if isinstance(self.ridge, Tensor) else self.ridge

    def rhs(self, term: Term):
        """c⁺ Σ_{pos∋i} φ for rows of `term`."""
        return lambda rows: self.obj.c_pos * term_sums(term, rows)


def block_systems(obj: Objective, tables: dict[str, Tensor], role: int, rows: Tensor | None = None
                  ) -> tuple[Tensor, Tensor]:
    """(A [n, D, D], rhs [n, D]) of the normal equations of `rows` (default all) of the table in
    `role`, in float64, assembled as `solve_rows` assembles them.  For tests and small tables."""
    _check(obj, role)
    blk = _Block(obj, tables, role)
    rows = torch.arange(blk.n_rows) if rows is None else rows
    term = blk.term(0, blk.n_rows)
    A = blk.w[role].index_select(0, rows).view(-1, 1, 1) * blk.K
    ridge = blk.ridge.index_select(0, rows).unsqueeze(1) if isinstance(blk.ridge, Tensor) else blk.ridge
    A.diagonal(dim1=1, dim2=2).add_(ridge)
    row_grams(term, rows, A)
    return A, blk.rhs(term)(rows)


@torch.no_grad()
def solve_block(obj: Objective, tables: dict[str, Tensor], role: int, *, memory_mb: float = 256.0) -> Tensor:
    """The exact minimiser of F over the table in `role` (others fixed), in that table's dtype.

    Rows are independent: `jnskr.training.blocks.solve_rows` solves them; the entries' φ are
    built for chunks of rows holding at most `memory_mb` of them."""
    _check(obj, role)
    blk = _Block(obj, tables, role)
    D = blk.K.shape[0]
    per = max(1, int(memory_mb * 2**20 // (8 * D)))  # entries of φ per chunk
    dtype = tables[obj.spec.roles[role]].dtype
    out, lo = [], 0
    while lo < blk.n_rows:
        hi = int(torch.searchsorted(blk.starts, blk.starts[lo] + per, right=True)) - 1
        hi = min(blk.n_rows, max(hi, lo + 1))
        term = blk.term(lo, hi)
        out.append(solve_rows(hi - lo, [(blk.K, blk.w[role][lo:hi])], [term], None, blk.ridge_of(lo, hi),
                              blk.rhs(term), dtype))
        lo = hi
    return torch.cat(out)
