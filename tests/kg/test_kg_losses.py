"""KG whole-data losses equal their brute-force definitions in value and gradient (float64)."""

import pytest
import torch

from jnskr.kg.losses import (
    COMPLEX,
    DISTMULT,
    allpairs,
    allpairs_part,
    nonsampling_kge_loss,
    nonsampling_kge_loss_bruteforce,
    penalty,
    role_matrix,
    role_query,
    score,
)
from jnskr.losses.gram import weighted_gram
from jnskr.kg.models import MODELS
from jnskr.kg.objective import Objective, negative_weights, with_reciprocals

TOL = 1e-10


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def unique_triples(gen, n, nh, nr, nt):
    key = torch.randperm(nh * nr * nt, generator=gen)[:n]
    return torch.stack([key // (nr * nt), (key // nt) % nr, key % nt], dim=1)


def problem(name, seed=0, n_e=6, n_r=3, d=3, n_pos=20):
    gen = torch.Generator().manual_seed(seed)
    spec = MODELS[name]
    shapes = spec.table_shapes(n_e, n_r, d)
    tables = {k: torch.randn(*s, generator=gen, dtype=torch.float64, requires_grad=True) for k, s in shapes.items()}
    pos = unique_triples(gen, n_pos, n_e, n_r, n_e)
    a = torch.rand(n_e, generator=gen, dtype=torch.float64) + 0.1
    b = torch.rand(n_r, generator=gen, dtype=torch.float64) * 0.3
    g = torch.rand(n_e, generator=gen, dtype=torch.float64) + 0.1
    return spec, tables, pos, a, b, g


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("seed,n_pos,c_pos", [(0, 20, 1.0), (1, 0, 1.0), (2, 7, 2.5), (3, 108, 1.0)])
def test_efficient_loss_equals_bruteforce_value_and_gradient(name, seed, n_pos, c_pos):
    spec, tables, pos, a, b, g = problem(name, seed, n_pos=n_pos)
    H, R, T = spec.role_tables(tables)
    eff = nonsampling_kge_loss(spec.form, H, R, T, pos, c_pos, a, b, g) + c_pos * n_pos
    ref = nonsampling_kge_loss_bruteforce(spec.form, H, R, T, pos, c_pos, a, b, g)
    assert rel_err(eff.detach(), ref.detach()) <= TOL
    params = list(tables.values())
    for ge, gr in zip(torch.autograd.grad(eff, params), torch.autograd.grad(ref, params)):
        assert rel_err(ge, gr) <= TOL


@pytest.mark.parametrize("name", list(MODELS))
def test_uniform_weights_share_one_gram(name):
    spec, tables, pos, a, b, _ = problem(name, 4)
    H, R, T = spec.role_tables(tables)
    ones = torch.ones_like(a)
    eff = nonsampling_kge_loss(spec.form, H, R, T, pos, 1.0, ones, b, ones) + pos.shape[0]
    ref = nonsampling_kge_loss_bruteforce(spec.form, H, R, T, pos, 1.0, ones, b, ones)
    assert rel_err(eff.detach(), ref.detach()) <= TOL


def test_complex_allpairs_equals_the_complex_number_form():
    """½ Re Σ_kl [P_h∘P_r∘conj(P_t) + Q_h∘Q_r∘conj(Q_t)], P = Σ w x x^H, Q = Σ w x xᵀ."""
    spec, tables, _, a, b, g = problem("complex", 5, n_e=7, n_r=4, d=5)
    E, R = tables["entity"].detach(), tables["relation"].detach()
    d = 5

    def cplx(x):
        return torch.complex(x[:, :d], x[:, d:])

    def P(x, w):
        return (cplx(x) * w[:, None]).T @ cplx(x).conj()

    def Q(x, w):
        return (cplx(x) * w[:, None]).T @ cplx(x)

    form = 0.5 * ((P(E, a) * P(R, b) * P(E, g).conj()).sum() + (Q(E, a) * Q(R, b) * Q(E, g).conj()).sum()).real
    ours = allpairs_part(spec.form, E, R, E, a, b, g)
    brute = nonsampling_kge_loss_bruteforce(spec.form, E, R, E, torch.zeros(0, 3, dtype=torch.long), 1.0, a, b, g)
    assert rel_err(ours, brute) <= TOL and rel_err(form, brute) <= TOL


def test_complex_score_is_re_of_the_hermitian_product():
    gen = torch.Generator().manual_seed(0)
    h, r, t = (torch.randn(9, 8, generator=gen, dtype=torch.float64) for _ in range(3))

    def c(x):
        return torch.complex(x[:, :4], x[:, 4:])

    expect = (c(h) * c(r) * c(t).conj()).sum(-1).real
    assert rel_err(score(COMPLEX, h, r, t), expect) <= TOL


@pytest.mark.parametrize("form", [DISTMULT, COMPLEX], ids=["real", "complex"])
@pytest.mark.parametrize("role", [0, 1, 2])
def test_role_query_and_role_matrix(form, role):
    gen = torch.Generator().manual_seed(role)
    nb = form.blocks[0]
    X = [torch.randn(n, nb * 3, generator=gen, dtype=torch.float64) for n in (5, 4, 6)]
    w = [torch.rand(x.shape[0], generator=gen, dtype=torch.float64) for x in X]
    idx = [torch.randint(0, x.shape[0], (11,), generator=gen) for x in X]
    rows = [x[i] for x, i in zip(X, idx)]
    others = [i for i in range(3) if i != role]
    phi = role_query(form, role, rows[others[0]], rows[others[1]])
    assert rel_err((phi * rows[role]).sum(-1), score(form, *rows)) <= TOL
    grams = [weighted_gram(x, wi) for x, wi in zip(X, w)]
    K = role_matrix(form, role, grams[others[0]], grams[others[1]])
    assert rel_err((K * grams[role]).sum(), allpairs(form, *grams)) <= TOL
    assert rel_err(K, K.T) <= TOL


def test_weighted_gram_backward_matches_autograd():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(7, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.rand(7, generator=gen, dtype=torch.float64)
    up = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    (g1,) = torch.autograd.grad((weighted_gram(x, w) * up).sum(), x)
    (g2,) = torch.autograd.grad((((x * w[:, None]).T @ x) * up).sum(), x)
    assert rel_err(g1, g2) <= TOL


def test_n3_penalty_is_modulus_cubed_and_smooth_at_zero():
    x = torch.tensor([[3.0, 0.0, 4.0, 0.0]], dtype=torch.float64, requires_grad=True)
    assert float(penalty(x.detach(), 2, "n3")) == pytest.approx(125.0)  # |3+4i|³ + |0|³
    assert float(penalty(x.detach(), 1, "n3")) == pytest.approx(27 + 64)
    (gr,) = torch.autograd.grad(penalty(x, 2, "n3"), x)
    assert torch.isfinite(gr).all()
    assert float(penalty(x.detach(), 2, "l2")) == pytest.approx(12.5)


def test_negative_weights_total_and_degree_shape():
    pos = torch.tensor([[0, 0, 1], [0, 1, 2], [3, 0, 1], [1, 1, 2]])
    a, b, g = negative_weights(pos, 5, 2, total=0.5, head="degree", relation="uniform", tail="uniform",
                               beta=1.0, dtype=torch.float64)
    assert float(a.sum() * b.sum() * g.sum()) == pytest.approx(0.5 * 4)
    assert float(a[1]) > float(a[0]) > 0 and float(a[4]) > 0  # unseen entity: clamped to degree 1
    assert torch.allclose(g, torch.full_like(g, float(g[0])))
    assert with_reciprocals(pos, 2)[4].tolist() == [1, 2, 0]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("reg,weighting", [("l2", "uniform"), ("l2", "frequency"), ("n3", "frequency"),
                                           ("n3", "uniform")])
def test_objective_batches_sum_to_f_and_f_equals_bruteforce(name, reg, weighting):
    spec, tables, pos, a, b, g = problem(name, 7, n_pos=24)
    obj = Objective(spec, pos, 1.0, a, b, g, reg=reg, lam=0.03, weighting=weighting)
    ref = obj.bruteforce(tables)
    assert rel_err(obj.full(tables).detach(), ref.detach()) <= TOL
    assert abs(obj.value(tables, chunk=5) - float(ref.detach())) <= TOL * abs(float(ref.detach()))
    parts = sum(obj.batch(tables, pos[s:s + 7]) for s in range(0, 24, 7))
    assert rel_err(parts.detach(), ref.detach()) <= TOL
    params = list(tables.values())
    for ge, gr in zip(torch.autograd.grad(parts, params), torch.autograd.grad(ref, params)):
        assert rel_err(ge, gr) <= TOL
