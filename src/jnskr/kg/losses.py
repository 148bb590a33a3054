"""Whole-data (non-sampling) square losses of trilinear KG embeddings, as pure functions.

Every model here scores a triple with a *trilinear form* of three factor rows: a head row
h ∈ ℝ^{n_e·d}, a relation row r ∈ ℝ^{n_r·d}, a tail row t ∈ ℝ^{n_e·d}, each cut into
blocks of size d (one block for a real model, two — real, imaginary — for ComplEx)::

    ĝ(h, r, t) = Σ_s σ_s Σ_k h[α_s]_k · r[β_s]_k · t[γ_s]_k        (terms s = (α, β, γ, σ))

DistMult and CP have the single term (0, 0, 0, +1); ComplEx, Re⟨h, r, conj(t)⟩ with
h = a + ib, r = c + id, t = e + if, has four: ace + bcf + adf − bde.

The loss over *all* E_h × R × E_t triples with rank-1 negative weights c⁻_hrt = a_h·b_r·g_t is

    L = Σ_{h,r,t} ω_hrt (y_hrt − ĝ_hrt)²,   ω = c⁺ on positives, c⁻_hrt elsewhere
      = Σ_pos [(c⁺ − c⁻_hrt) ĝ² − 2c⁺ ĝ]  +  Σ_{h,r,t} a_h b_r g_t ĝ²  +  c⁺·|pos|

and the all-triples part collapses into d×d blocks of three weighted Gram matrices
G_H = Hᵀdiag(a)H, G_R = Rᵀdiag(b)R, G_T = Tᵀdiag(g)T (block [x, y] = rows' block x against
block y)::

    Σ_{h,r,t} a_h b_r g_t ĝ² = Σ_{s,s'} σ_s σ_s' ⟨ G_H[α_s,α_s'] ∘ G_R[β_s,β_s'] ∘ G_T[γ_s,γ_s'] ⟩

(expand ĝ² as a double sum over terms and components k, l and push each Σ over h, r, t onto
its own factor).  DistMult: 1ᵀ[(EᵀAE) ∘ (RᵀBR) ∘ (EᵀGE)]1.  ComplEx: 16 products of real and
imaginary blocks; in complex form it equals ½ Re Σ_kl [P_h∘P_r∘conj(P_t) + Q_h∘Q_r∘conj(Q_t)]
with P = Σ w x x^H and Q = Σ w x xᵀ (the tests check both forms against brute force).

For one term (DistMult, CP) the two parts are JNSKR's KG term itself: `jnskr.losses.positive_term`
and `jnskr.losses.kg_allpairs_term` (tests/kg/test_kg_spine.py checks the two losses against each
other and their brute-force twins).  The Grams come from `jnskr.losses.gram`.

The efficient loss drops the constant c⁺·|pos|; `nonsampling_kge_loss_bruteforce` enumerates
all triples.  Positives must be unique triples.  All functions work for any float dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jnskr.losses import kg_allpairs_term, positive_term
from jnskr.losses.gram import weighted_gram

__all__ = [
    "ROLES", "Trilinear", "DISTMULT", "COMPLEX", "score", "role_query",
    "allpairs", "role_matrix", "nonsampling_kge_loss", "positive_part", "allpairs_part", "nonsampling_kge_loss_bruteforce", "penalty",
]

ROLES = ("head", "relation", "tail")


@dataclass(frozen=True)
class Trilinear:
    """ĝ = Σ_s σ_s Σ_k h[α_s]_k r[β_s]_k t[γ_s]_k; `blocks` = (head, relation, tail) blocks per row."""

    blocks: tuple[int, int, int]
    terms: tuple[tuple[int, int, int, float], ...]

    def width(self, role: int, dim: int) -> int:
        """Row width of the table in `role` (0 head, 1 relation, 2 tail) for rank `dim`."""
        return self.blocks[role] * dim


DISTMULT = Trilinear((1, 1, 1), ((0, 0, 0, 1.0),))
COMPLEX = Trilinear((2, 2, 2), ((0, 0, 0, 1.0), (1, 0, 1, 1.0), (0, 1, 1, 1.0), (1, 1, 0, -1.0)))


def _split(x: Tensor, nb: int) -> Tensor:
    return x.reshape(*x.shape[:-1], nb, x.shape[-1] // nb)


def _blocks(x: Tensor, nb: int) -> tuple[Tensor, ...]:
    """The nb column blocks of x as views (backward: one concatenation, no zero-filled copies)."""
    return x.split(x.shape[-1] // nb, dim=-1) if nb > 1 else (x,)


def _acc(acc: Tensor | None, p: Tensor, s: float) -> Tensor:
    if acc is None:
        return p if s == 1.0 else (-p if s == -1.0 else s * p)
    if s == 1.0:
        return acc + p
    return acc - p if s == -1.0 else acc + s * p


def score(spec: Trilinear, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
    """ĝ of row-aligned triples.  h: [n, n_e·d], r: [n, n_r·d], t: [n, n_e·d] -> [n]."""
    return torch.linalg.vecdot(role_query(spec, 2, h, r), t)


def role_query(spec: Trilinear, role: int, x1: Tensor, x2: Tensor) -> Tensor:
    """φ with ĝ = φ · x_role, from the rows of the two other roles (in head, relation, tail order).

    role 2 (tails): φ from (h, r) — score all tails with φ @ Tᵀ; role 0 (heads): from (r, t);
    role 1 (relations): from (h, t).  x1: [n, ·], x2: [n, ·] -> [n, blocks[role]·d].
    """
    o0, o1 = [i for i in range(3) if i != role]
    b0, b1 = _blocks(x1, spec.blocks[o0]), _blocks(x2, spec.blocks[o1])
    parts: list[Tensor | None] = [None] * spec.blocks[role]
    for term in spec.terms:
        k = term[role]
        parts[k] = _acc(parts[k], b0[term[o0]] * b1[term[o1]], term[3])
    filled = [p if p is not None else torch.zeros_like(b0[0]) for p in parts]
    return filled[0] if len(filled) == 1 else torch.cat(filled, dim=-1)


def _block(g: Tensor, nb: int, x: int, y: int) -> Tensor:
    d = g.shape[0] // nb
    return g[x * d:(x + 1) * d, y * d:(y + 1) * d]


def _term_pairs(g: Tensor, nb: int, idx: list[int]) -> Tensor:
    """[S, S, d, d]: block (idx[s], idx[s']) of the Gram g for every pair of terms."""
    d = g.shape[0] // nb
    g4 = g.reshape(nb, d, nb, d).transpose(1, 2)
    i = torch.tensor(idx, device=g.device)
    return g4[i.unsqueeze(1), i.unsqueeze(0)]


def allpairs(spec: Trilinear, g_head: Tensor, g_rel: Tensor, g_tail: Tensor) -> Tensor:
    """Σ_{h,r,t} a_h b_r g_t ĝ² from the weighted Grams G_H, G_R, G_T ([n·d, n·d] each) -> scalar.

    = Σ_{s,s'} σ_s σ_s' ⟨G_H[α_s,α_s'] ∘ G_R[β_s,β_s'] ∘ G_T[γ_s,γ_s']⟩, all term pairs at once."""
    if len(spec.terms) == 1:  # DistMult, CP: JNSKR's KG term, ⟨G_R ∘ G_H ∘ G_T⟩ (`jnskr.losses`)
        total = kg_allpairs_term(g_rel, g_head, g_tail)
        return total if spec.terms[0][3] ** 2 == 1.0 else total * (spec.terms[0][3] ** 2)
    cols = list(zip(*spec.terms))
    prod = (_term_pairs(g_head, spec.blocks[0], list(cols[0])) * _term_pairs(g_rel, spec.blocks[1], list(cols[1]))
            * _term_pairs(g_tail, spec.blocks[2], list(cols[2])))
    sign = torch.tensor(cols[3], dtype=g_head.dtype, device=g_head.device)
    return (prod.sum((-1, -2)) * torch.outer(sign, sign)).sum()


def role_matrix(spec: Trilinear, role: int, g1: Tensor, g2: Tensor) -> Tensor:
    """K_role = Σ over the two other roles' rows of (weights)·φφᵀ, from their Grams (g1, g2 in
    head, relation, tail order), so that Σ_{other rows} w ĝ² = xᵀ K x for a row x of `role`,
    and ⟨K_role ∘ G_role⟩ = `allpairs`.  -> [blocks[role]·d, blocks[role]·d]."""
    others = [i for i in range(3) if i != role]
    nb = spec.blocks[role]
    d = g1.shape[0] // spec.blocks[others[0]]
    rows = []
    for x in range(nb):
        cols = []
        for y in range(nb):
            acc = g1.new_zeros(d, d)
            for t1 in spec.terms:
                if t1[role] != x:
                    continue
                for t2 in spec.terms:
                    if t2[role] != y:
                        continue
                    acc = acc + (t1[3] * t2[3]) * (
                        _block(g1, spec.blocks[others[0]], t1[others[0]], t2[others[0]])
                        * _block(g2, spec.blocks[others[1]], t1[others[1]], t2[others[1]]))
            cols.append(acc)
        rows.append(torch.cat(cols, dim=1))
    return torch.cat(rows, dim=0)


def nonsampling_kge_loss(
    spec: Trilinear,
    head_table: Tensor,
    rel_table: Tensor,
    tail_table: Tensor,
    pos: Tensor,
    c_pos: float,
    a: Tensor,
    b: Tensor,
    g: Tensor,
    *,
    allpairs_scale: float = 1.0,
) -> Tensor:
    """Efficient whole-data weighted square loss (constant c⁺·|pos| dropped).

    Args:
        spec: the trilinear form of the model.
        head_table: [N_h, n_e·d], rel_table: [R, n_r·d], tail_table: [N_t, n_e·d] (may be the
            same tensor as head_table: DistMult, ComplEx).
        pos: [n, 3] int64 (head, relation, tail) ids of unique positive triples (a batch of them).
        c_pos: weight of a positive triple.
        a: [N_h], b: [R], g: [N_t] rank-1 negative weights, c⁻_hrt = a_h·b_r·g_t.
        allpairs_scale: multiplies the all-triples term (|batch| / |pos| for mini-batches).

    Returns:
        scalar Σ_pos[(c⁺ − c⁻)ĝ² − 2c⁺ĝ] + allpairs_scale · Σ_{h,r,t} c⁻_hrt ĝ²_hrt.
    """
    positive = positive_part(spec, head_table, rel_table, tail_table, pos, c_pos, a, b, g)
    return positive + allpairs_scale * allpairs_part(spec, head_table, rel_table, tail_table, a, b, g)


def positive_part(spec: Trilinear, head_table: Tensor, rel_table: Tensor, tail_table: Tensor, pos: Tensor,
                  c_pos: float, a: Tensor, b: Tensor, g: Tensor) -> Tensor:
    """Σ_pos[(c⁺ − c⁻_hrt)ĝ² − 2c⁺ĝ].  Shapes as `nonsampling_kge_loss` -> scalar."""
    ph, pr, pt = pos[:, 0], pos[:, 1], pos[:, 2]
    y = score(spec, head_table.index_select(0, ph), rel_table.index_select(0, pr), tail_table.index_select(0, pt))
    cn = a.index_select(0, ph) * b.index_select(0, pr) * g.index_select(0, pt)
    return positive_term(y, c_pos, cn)


def allpairs_part(spec: Trilinear, head_table: Tensor, rel_table: Tensor, tail_table: Tensor,
                  a: Tensor, b: Tensor, g: Tensor) -> Tensor:
    """Σ_{h,r,t} a_h b_r g_t ĝ²_hrt through the three weighted Grams (one when the head and tail
    tables and weights coincide).  Shapes as `nonsampling_kge_loss` -> scalar."""
    g_head = weighted_gram(head_table, a)
    same = tail_table is head_table and (g is a or torch.equal(g, a))
    g_tail = g_head if same else weighted_gram(tail_table, g)
    return allpairs(spec, g_head, weighted_gram(rel_table, b), g_tail)


def nonsampling_kge_loss_bruteforce(
    spec: Trilinear,
    head_table: Tensor,
    rel_table: Tensor,
    tail_table: Tensor,
    pos: Tensor,
    c_pos: float,
    a: Tensor,
    b: Tensor,
    g: Tensor,
) -> Tensor:
    """Σ over all N_h×R×N_t triples of ω(y − ĝ)², each ĝ by einsum (tests/benchmarks only).

    Shapes as `nonsampling_kge_loss`.  Memory O(N_h·R·N_t).
    """
    hb, rb = _split(head_table, spec.blocks[0]), _split(rel_table, spec.blocks[1])
    tb = _split(tail_table, spec.blocks[2])
    ghat = sum(s * torch.einsum("hk,rk,tk->hrt", hb[:, x], rb[:, y], tb[:, z]) for x, y, z, s in spec.terms)
    w = (a.view(-1, 1, 1) * b.view(1, -1, 1) * g.view(1, 1, -1)).expand_as(ghat).clone()
    w[pos[:, 0], pos[:, 1], pos[:, 2]] = c_pos
    target = torch.zeros_like(ghat)
    target[pos[:, 0], pos[:, 1], pos[:, 2]] = 1.0
    return (w * (target - ghat) ** 2).sum()


class _N3(torch.autograd.Function):
    """Σ_k m_k³ per row, m_k = modulus over the blocks; backward 3·m·x (finite at m = 0)."""

    @staticmethod
    def forward(ctx, x: Tensor, blocks: int) -> Tensor:
        sq = sum(b * b for b in _blocks(x, blocks))
        m = sq.sqrt()
        ctx.save_for_backward(x, m)
        ctx.blocks = blocks
        return (sq * m).sum(-1)

    @staticmethod
    def backward(ctx, g: Tensor):
        x, m = ctx.saved_tensors
        f = m * (3.0 * g).unsqueeze(-1)  # [n, d], the same for every block
        if ctx.blocks == 1:
            return x * f, None
        return (_split(x, ctx.blocks) * f.unsqueeze(-2)).reshape(x.shape), None


def penalty(x: Tensor, blocks: int, norm: str) -> Tensor:
    """Per-row regulariser.  x: [n, blocks·d] -> [n].

    ``l2``: ½‖x‖²;  ``n3``: Σ_k |x_k|³ with |x_k| the modulus over the blocks (for ComplEx
    √(re_k² + im_k²), the nuclear 3-norm bound of Lacroix et al. 2018).
    """
    if norm == "l2":
        return 0.5 * (x * x).sum(-1)
    if norm == "n3":
        return _N3.apply(x, blocks)
    raise ValueError(f"unknown penalty {norm!r}")
