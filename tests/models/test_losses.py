"""Efficient losses equal their brute-force definitions, in value and in gradient (docs/spec.md §3.5, §11)."""

import pytest
import torch

from jnskr.losses import (
    cf_allpairs_term,
    gram_with_rows,
    positive_term,
    nonsampling_cf_loss,
    nonsampling_cf_loss_bruteforce,
    nonsampling_kg_loss,
    nonsampling_kg_loss_bruteforce,
)

TOL = 1e-9


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _unique_pairs(g, n, hi_a, hi_b):
    key = torch.randperm(hi_a * hi_b, generator=g)[:n]
    return key // hi_b, key % hi_b


def _cf_problem(seed, M, B, d, n_pos, c_pos, device="cpu"):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device).requires_grad_()

    P, Q, h = r(M, d), r(B, d), r(d)
    pu, pi = _unique_pairs(g, n_pos, M, B)
    c_neg = torch.rand(B, generator=g, dtype=torch.float64) * 0.5
    return P, Q, h, pu.to(device), pi.to(device), c_pos, c_neg.to(device)


def _grads(loss, params):
    return torch.autograd.grad(loss, params)


@pytest.mark.parametrize(
    "seed,M,B,d,n_pos,c_pos",
    [
        (0, 7, 3, 4, 5, 1.0),  # tiny
        (1, 37, 8, 6, 40, 2.5),  # c_pos != 1, M not a multiple of B
        (2, 50, 5, 3, 0, 1.0),  # no positives at all
        (3, 64, 16, 8, 1, 0.7),  # one positive: most users have none in the batch
        (4, 13, 13, 5, 169, 1.0),  # every pair positive
    ],
)
def test_cf_loss_equals_bruteforce(seed, M, B, d, n_pos, c_pos, device):
    P, Q, h, pu, pi, c_pos, c_neg = _cf_problem(seed, M, B, d, n_pos, c_pos, device)
    eff = nonsampling_cf_loss(P, Q, h, pu, pi, c_pos, c_neg) + c_pos * n_pos
    ref = nonsampling_cf_loss_bruteforce(P, Q, h, pu, pi, c_pos, c_neg)
    assert _rel_err(eff.detach(), ref.detach()) <= TOL
    for ge, gr in zip(_grads(eff, [P, Q, h]), _grads(ref, [P, Q, h])):
        assert _rel_err(ge, gr) <= TOL


@pytest.mark.parametrize("seed,M,B,d,n_pos", [(0, 7, 3, 4, 5), (1, 37, 8, 6, 40), (3, 64, 16, 8, 1), (4, 13, 13, 5, 169)])
def test_cf_loss_with_per_pair_positive_weights_equals_bruteforce(seed, M, B, d, n_pos, device):
    """c⁺_uv = c_pos · value per positive (data.weight: confidence): some below c⁻, one zero."""
    P, Q, h, pu, pi, _, c_neg = _cf_problem(seed, M, B, d, n_pos, 1.0, device)
    g = torch.Generator().manual_seed(100 + seed)
    c_pos = (4.0 * torch.rand(n_pos, generator=g, dtype=torch.float64)).to(device)
    c_pos[0] = 0.0
    eff = nonsampling_cf_loss(P, Q, h, pu, pi, c_pos, c_neg) + c_pos.sum()
    ref = nonsampling_cf_loss_bruteforce(P, Q, h, pu, pi, c_pos, c_neg)
    assert _rel_err(eff.detach(), ref.detach()) <= TOL
    for ge, gr in zip(_grads(eff, [P, Q, h]), _grads(ref, [P, Q, h])):
        assert _rel_err(ge, gr) <= TOL
    ones = torch.ones(n_pos, dtype=torch.float64, device=device)  # all-ones weights: the scalar's loss
    assert _rel_err(nonsampling_cf_loss(P, Q, h, pu, pi, ones, c_neg).detach(),
                    nonsampling_cf_loss(P, Q, h, pu, pi, 1.0, c_neg).detach()) <= TOL


def test_cf_loss_is_symmetric_in_its_sides():
    P, Q, h, pu, pi, c_pos, _ = _cf_problem(5, 20, 6, 4, 15, 1.0)
    w = 0.3
    a = nonsampling_cf_loss(P, Q, h, pu, pi, c_pos, torch.full((6,), w, dtype=torch.float64))
    b = nonsampling_cf_loss(Q, P, h, pi, pu, c_pos, torch.full((20,), w, dtype=torch.float64))
    assert _rel_err(a.detach(), b.detach()) <= TOL


def test_the_loss_is_its_pure_terms():
    P, Q, h, pu, pi, c_pos, c_neg = _cf_problem(6, 30, 4, 5, 10, 1.0)
    a = nonsampling_cf_loss(P, Q, h, pu, pi, c_pos, c_neg)
    y = ((P[pu] * Q[pi]) @ h)
    b = positive_term(y, c_pos, c_neg[pi]) + cf_allpairs_term(h, P.T @ P, (Q * c_neg[:, None]).T @ Q)
    assert _rel_err(a.detach(), b.detach()) <= TOL


def _kg_problem(seed, B, R, T, d, n_pos, w_pos, device="cpu"):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device).requires_grad_()

    E, Z, X = r(B, d), r(R, d), r(T, d)
    key = torch.randperm(B * R * T, generator=g)[:n_pos]
    ph, pr, pt = key // (R * T), (key // T) % R, key % T
    w_neg = torch.rand(B, generator=g, dtype=torch.float64) * 2.0  # some above w_pos (docs/spec.md B11)
    return E, Z, X, ph.to(device), pr.to(device), pt.to(device), w_pos, w_neg.to(device)


@pytest.mark.parametrize(
    "seed,B,R,T,d,n_pos,w_pos",
    [
        (0, 3, 2, 5, 4, 6, 1.0),
        (1, 6, 4, 11, 5, 20, 3.0),  # relations that never occur for some heads
        (2, 4, 3, 7, 3, 0, 1.0),  # no facts
        (3, 8, 5, 9, 6, 1, 0.5),
    ],
)
def test_kg_loss_equals_bruteforce(seed, B, R, T, d, n_pos, w_pos, device):
    E, Z, X, ph, pr, pt, w_pos, w_neg = _kg_problem(seed, B, R, T, d, n_pos, w_pos, device)
    eff = nonsampling_kg_loss(E, Z, X, ph, pr, pt, w_pos, w_neg) + w_pos * n_pos
    ref = nonsampling_kg_loss_bruteforce(E, Z, X, ph, pr, pt, w_pos, w_neg)
    assert _rel_err(eff.detach(), ref.detach()) <= TOL
    for ge, gr in zip(_grads(eff, [E, Z, X]), _grads(ref, [E, Z, X])):
        assert _rel_err(ge, gr) <= TOL


def test_duplicate_positives_break_the_identity():
    """Documented precondition: positives must be unique (docs/spec.md §3.5)."""
    P, Q, h, pu, pi, c_pos, c_neg = _cf_problem(7, 10, 4, 3, 5, 1.0)
    pu2, pi2 = torch.cat([pu, pu[:1]]), torch.cat([pi, pi[:1]])
    eff = nonsampling_cf_loss(P, Q, h, pu2, pi2, c_pos, c_neg) + c_pos * 6
    ref = nonsampling_cf_loss_bruteforce(P, Q, h, pu2, pi2, c_pos, c_neg)
    assert _rel_err(eff.detach(), ref.detach()) > 1e-6


def test_float32_agrees_to_single_precision():
    P, Q, h, pu, pi, c_pos, c_neg = _cf_problem(8, 200, 32, 16, 300, 1.0)
    args = [t.detach().float() for t in (P, Q, h)]
    eff = nonsampling_cf_loss(*args, pu, pi, c_pos, c_neg.float()) + c_pos * 300
    ref = nonsampling_cf_loss_bruteforce(P.detach(), Q.detach(), h.detach(), pu, pi, c_pos, c_neg)
    assert _rel_err(eff.double(), ref) <= 1e-5


def test_gram_with_rows_matches_separate_ops_in_value_and_gradient():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(40, 6, dtype=torch.float64, generator=g, requires_grad=True)
    idx = torch.randint(0, 40, (90,), generator=g)  # repeated rows accumulate
    s, rows = gram_with_rows(x, idx)
    assert torch.allclose(s, x.T @ x) and torch.equal(rows, x[idx])
    gs = torch.randn(6, 6, dtype=torch.float64, generator=g)  # not symmetric on purpose
    gr = torch.randn(90, 6, dtype=torch.float64, generator=g)
    (fused,) = torch.autograd.grad((s * gs).sum() + (rows * gr).sum(), x)
    (plain,) = torch.autograd.grad(((x.T @ x) * gs).sum() + (x[idx] * gr).sum(), x)
    assert torch.allclose(fused, plain, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: gram_with_rows(t, idx), (x,))
