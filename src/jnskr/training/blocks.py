"""Exact block solves of the whole-data objective (docs/solver.md): many small SPD systems.

Every exact block of the objective F (users; items; an item's base vector; ENMF's items) has the
same shape: for each row i of the block,

    A_i = Σ_g s_gi G_g + Σ_{terms} Σ_{j ∈ term.row(i)} w_j o_j o_jᵀ + diag(D_i) + ρ I,      A_i x_i = b_i

G_g d×d matrices shared by all rows (the all-pairs Grams), s_gi their weights for row i, the sums over
each row's observed entries (a CSR `Term`), D_i the expected-dropout diagonal, ρ the ridge (the
L2 weight; a scalar or one per row).  Two ways to solve them (`solve_block`):

* `solve_rows` (exact): builds and solves them chunk by chunk in float64: per-row Grams by degree
  buckets (zero-padded batched matmuls, no [nnz, d, d] temporary), then a batched Cholesky.
  O(nnz·d² + n·d³) a block: cheap for small d.
* `cg_rows` (conjugate gradient, warm-started from the current rows, implicit's ALS default):
  never forms A_i; a product A v for all rows at once is one GEMM per shared Gram plus, per term,
  one sampled dense-dense product (the entries' o_jᵀ v_i) and one sparse-dense product.
  O(steps · (nnz·d + n·d²)) a block; each step lowers every row's quadratic (it minimises it over
  a Krylov space that contains the start), and enough steps reach the exact solution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

import jnskr.ops  # noqa: F401  (silences torch's one-time sparse warnings before any thread runs)


#: elements of a padded [rows, pad, d] gather per batched matmul
GATHER_BUDGET = 1 << 22
#: rows of A [rows, d, d] built and solved at once (at most)
SOLVE_ROWS = 4096
#: elements of one chunk of A (float64: 128 MB); wide d gets fewer rows per chunk
SOLVE_BUDGET = 1 << 24
#: `train.block_solver: auto` uses conjugate gradient above this d.  Measured on ml100k-kgat (ENMF
#: sweep, 1 thread, Intel Xeon): Cholesky 0.040 / 0.174 / 2.06 s at d 32 / 64 / 128 against CG (3 steps)
#: 0.010 / 0.016 / 0.040 s; JNSKR's default run reaches the same validation Recall@20 (0.3491) with
#: 6 CG steps in 16 sweeps against 26 exact ones (21 s against 39 s).
CG_ABOVE_DIM = 32


def solve_chunk_rows(d: int) -> int:
    """Rows of A [rows, d, d] per chunk of `solve_rows`."""
    return max(1, min(SOLVE_ROWS, SOLVE_BUDGET // (d * d)))


@dataclass
class Term:
    """Observed entries of each row: row i owns entries indptr[i]:indptr[i+1]; entry k reads the
    vector src[idx[k]] with weight w[k]."""

    indptr: Tensor  # int64 [n + 1]
    idx: Tensor  # int64 [nnz]
    src: Tensor  # float [n_src, d]
    w: Tensor  # float [nnz]


def row_grams(term: Term, rows: Tensor, out: Tensor) -> None:
    """out[r] += Σ_{k ∈ term.row(rows[r])} w_k o_k o_kᵀ for every r (float64, in place).

    Rows are grouped by degree into power-of-two paddings; each group is one batched matmul
    (Vᵀ diag(w) V) over zero-weighted padding."""
    start = term.indptr.index_select(0, rows)
    deg = term.indptr.index_select(0, rows + 1) - start
    if len(deg) == 0 or int(deg.max()) == 0:
        return
    d = term.src.shape[1]
    pad = torch.where(deg > 0, 2 ** torch.ceil(torch.log2(deg.clamp_min(1).double())).long(), 0)
    for p in torch.unique(pad[deg > 0]).tolist():
        sel = torch.nonzero(pad == p).flatten()
        step = max(1, GATHER_BUDGET // (p * d))
        ar = torch.arange(p, device=rows.device)
        for lo in range(0, len(sel), step):
            s = sel[lo:lo + step]
            valid = ar.unsqueeze(0) < deg.index_select(0, s).unsqueeze(1)  # [c, p]
            pos = torch.where(valid, start.index_select(0, s).unsqueeze(1) + ar, 0)
            flat = pos.flatten()
            v = term.src.index_select(0, term.idx.index_select(0, flat)).view(len(s), p, d)
            w = torch.where(valid, term.w.index_select(0, flat).view(len(s), p).to(v.dtype), 0.0)
            out.index_add_(0, s, torch.bmm((v * w.unsqueeze(2)).transpose(1, 2), v).to(out.dtype))


def term_sums(term: Term, rows: Tensor, weight: Tensor | None = None) -> Tensor:
    """Σ_{k ∈ term.row(i)} c_k o_k for each row of `rows` (c = `weight` per entry, else 1), as one
    sparse-times-dense product (no [nnz, d] gather).  -> float64 [n, d]."""
    start = term.indptr.index_select(0, rows)
    deg = term.indptr.index_select(0, rows + 1) - start
    ptr = torch.cat([deg.new_zeros(1), torch.cumsum(deg, 0)])
    pos = torch.repeat_interleave(start - ptr[:-1], deg) + torch.arange(int(ptr[-1]), device=rows.device)
    src = term.src
    c = weight.index_select(0, pos).to(src.dtype) if weight is not None else torch.ones(len(pos), dtype=src.dtype,
                                                                                         device=rows.device)
    # torch's one-time "sparse CSR is beta" warning is silenced at import (`jnskr.ops`)
    a = torch.sparse_csr_tensor(ptr, term.idx.index_select(0, pos), c, size=(len(rows), src.shape[0]))
    return (a @ src).double()


def _cholesky(A: Tensor) -> tuple[Tensor, Tensor]:
    """(L, bad rows) of a batch of SPD matrices.  On CPU through numpy's LAPACK (OpenBLAS): this
    torch build's MKL factors small matrices ~3x slower on the AMD CPUs measured here
    (bench/results/tta); where any matrix is not positive definite, torch's per-matrix `info`."""
    if A.device.type == "cpu":
        try:
            return torch.from_numpy(np.linalg.cholesky(A.numpy())), torch.zeros(len(A), dtype=torch.bool)
        except np.linalg.LinAlgError:
            pass
    L, info = torch.linalg.cholesky_ex(A)
    return L, info != 0


def spd_solve(A: Tensor, b: Tensor) -> Tensor:
    """x with A x = b for a batch of symmetric positive (semi)definite systems.  A [n, d, d], b [n, d].

    Raises `torch.linalg.LinAlgError` when the systems are not finite (e.g. c0 = 1e308 overflows
    the weighted Gram): checked only where the factorisation failed or the solution is not finite."""
    L, bad = _cholesky(A)
    y = torch.linalg.solve_triangular(L, b.unsqueeze(2), upper=False)
    x = torch.linalg.solve_triangular(L.mT, y, upper=True).squeeze(2)
    if bool(bad.any()) or not bool(torch.isfinite(x).all()):
        if not (bool(torch.isfinite(A).all()) and bool(torch.isfinite(b).all())):
            # LAPACK's least squares would fail with an internal assert on these
            raise torch.linalg.LinAlgError("the block system is not finite (weights too large for float64?)")
        if bool(bad.any()):  # singular rows (no data, no ridge): the least-squares solution
            x[bad] = torch.linalg.lstsq(A[bad], b[bad].unsqueeze(2)).solution.squeeze(2)
    return x


def solve_rows(n: int, shared: list[tuple[Tensor, Tensor | None]], terms: list[Term], diag: Tensor | None,
               ridge: float, rhs, out_dtype=torch.float32) -> Tensor:
    """Solve A_i x_i = b_i (module docstring; here Σ_g s_gi G_g for several shared matrices) for
    rows 0..n-1.

    Args:
        shared: [(G [d, d] float64, s [n] its weight per row, or None for 1)].
        terms: observed-entry sums added per row.
        diag: [n, d] extra diagonal per row (None: none); ridge: ρ (float, or float64 [n] per row).
        rhs: callable(rows) -> [len(rows), d] float64 right-hand sides.
    Returns: x [n, d] in `out_dtype`.
    """
    d = shared[0][0].shape[0]
    dev = shared[0][0].device
    out = torch.empty(n, d, dtype=out_dtype, device=dev)
    step = solve_chunk_rows(d)
    for lo in range(0, n, step):
        rows = torch.arange(lo, min(n, lo + step), device=dev)
        # Σ_g s_gi G_g as one [rows, g] @ [g, d²] product (A written once), then the ridge
        scales = torch.stack([torch.ones(len(rows), dtype=torch.float64, device=dev) if sc is None
                              else sc.index_select(0, rows).double() for _, sc in shared], 1)
        A = (scales @ torch.stack([G.reshape(-1) for G, _ in shared])).view(len(rows), d, d)
        A.diagonal(dim1=1, dim2=2).add_(_ridge_rows(ridge, rows))
        for t in terms:
            row_grams(t, rows, A)
        if diag is not None:
            A.diagonal(dim1=1, dim2=2).add_(diag.index_select(0, rows).double())
        out[lo:lo + len(rows)] = spd_solve(A, rhs(rows)).to(out_dtype)
    return out


def _ridge_rows(ridge, rows: Tensor):
    """The ridge of `rows` as something to add to their diagonals ([r, 1] per row, or a float)."""
    if isinstance(ridge, Tensor):
        return ridge.index_select(0, rows).double().unsqueeze(1)
    return ridge


class BlockOperator:
    """v ↦ A v for every row of a block at once (module docstring), in the dtype of `dtype`;
    A is never formed."""

    def __init__(self, n: int, shared, terms: list[Term], diag: Tensor | None, ridge, dtype):
        self.dtype = dtype
        self.shared = [(G.to(dtype), None if sc is None else sc.to(dtype).unsqueeze(1)) for G, sc in shared]
        self.diag = None if diag is None else diag.to(dtype)
        self.ridge = ridge.to(dtype).unsqueeze(1) if isinstance(ridge, Tensor) else float(ridge)
        # per term: its pattern (rows x sources, CSR), weights and sources in the working dtype
        self.terms = []
        for t in terms:
            if int(t.indptr[-1]) == 0:
                continue
            ones = torch.ones(len(t.idx), dtype=dtype, device=t.idx.device)
            pattern = torch.sparse_csr_tensor(t.indptr, t.idx, ones, size=(n, t.src.shape[0]))
            self.terms.append((pattern, t.w.to(dtype), t.src.to(dtype)))

    def __call__(self, v: Tensor) -> Tensor:
        out = None
        for G, sc in self.shared:
            t = v @ G
            if sc is not None:
                t.mul_(sc)
            out = t if out is None else out.add_(t)
        if isinstance(self.ridge, Tensor):
            out.addcmul_(v, self.ridge)
        else:
            out.add_(v, alpha=self.ridge)
        if self.diag is not None:
            out.addcmul_(self.diag, v)
        for pattern, w, src in self.terms:
            # o_jᵀ v_i at every entry (sampled dense-dense product), weighted, then Σ_j (…) o_j
            dots = torch.sparse.sampled_addmm(pattern, v, src.T, beta=0.0)
            weighted = torch.sparse_csr_tensor(pattern.crow_indices(), pattern.col_indices(),
                                               dots.values().mul_(w), size=pattern.shape)
            out.add_(weighted @ src)
        return out


def _rowdot(a: Tensor, b: Tensor) -> Tensor:
    """Σ_k a_ik b_ik per row, in the tables' dtype, returned as float64 (the CG step sizes)."""
    return torch.linalg.vecdot(a, b).double()


def cg_rows(n: int, shared, terms: list[Term], diag: Tensor | None, ridge, rhs, x0: Tensor,
            steps: int) -> Tensor:
    """`steps` conjugate-gradient steps on every row's system A_i x_i = b_i (`solve_rows`'s
    arguments), started from x0 [n, d] (the block's current rows).  Works in x0's dtype, with the
    per-row step sizes in float64.  -> x [n, d] in x0's dtype."""
    dtype = x0.dtype
    op = BlockOperator(n, shared, terms, diag, ridge, dtype)
    b = rhs(torch.arange(n, device=x0.device)).to(dtype)
    x = x0.detach().clone()
    r = b.sub_(op(x))
    p = r.clone()
    rs = _rowdot(r, r)
    for _ in range(steps):
        Ap = op(p)
        pap = _rowdot(p, Ap)
        alpha = torch.where(pap > 0, rs / torch.where(pap > 0, pap, 1.0), 0.0).to(dtype).unsqueeze(1)
        x.addcmul_(alpha, p)
        r.addcmul_(alpha, Ap, value=-1.0)
        rs_new = _rowdot(r, r)
        beta = torch.where(rs > 0, rs_new / torch.where(rs > 0, rs, 1.0), 0.0).to(dtype).unsqueeze(1)
        p = p.mul_(beta).add_(r)
        rs = rs_new
    if not bool(torch.isfinite(x).all()):
        raise torch.linalg.LinAlgError("the block system is not finite (conjugate gradient diverged)")
    return x


def block_method(method: str, d: int) -> str:
    """`train.block_solver` resolved for dimension d: cholesky or cg."""
    if method == "auto":
        return "cg" if d > CG_ABOVE_DIM else "cholesky"
    return method


def solve_block(n: int, shared, terms: list[Term], diag: Tensor | None, ridge, rhs, out_dtype,
                x0: Tensor | None = None, method: str = "cholesky", steps: int = 3) -> Tensor:
    """The rows of a block by `method` (cholesky: exact `solve_rows`; cg: `cg_rows` from x0)."""
    if method == "cg" and x0 is not None:
        return cg_rows(n, shared, terms, diag, ridge, rhs, x0.to(out_dtype), steps)
    return solve_rows(n, shared, terms, diag, ridge, rhs, out_dtype)
