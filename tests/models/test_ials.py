"""The iALS point of ENMF's objective (docs/solver.md): h fixed or learned, a confidence slope α
(c⁺ = 1 + α·value), a per-row ridge λ(n_i + c⁻ mass_i)^ν on every block, and the block solvers
(exact Cholesky, warm-started conjugate gradient).  Float64 proofs on small problems, then
equality with implicit's own ALS (skipped without `implicit`)."""

import numpy as np
import pytest
import torch

from jnskr.coldstart import FoldIn
from jnskr.data.dataset import Interactions
from jnskr.models.mf import ENMF, ENMFConfig
from jnskr.models.mf.problem import cf_value_bruteforce
from jnskr.training.blocks import Term, cg_rows, solve_rows
from jnskr.models.mf.objective import CFObjective
from jnskr.training.weights import row_ridge

M, N, D = 9, 7, 4
CASES = {
    "ials": dict(h="fixed", keep_prob=1.0, negative_weight=1.0, alpha=4.0, reg=0.7),
    "ials-scaled": dict(h="fixed", keep_prob=1.0, negative_weight=0.25, alpha=9.0, reg=0.05, reg_exponent=0.8),
    "learned-h": dict(h="learned", keep_prob=0.6, negative_weight=0.3, alpha=2.0, reg=0.3, reg_exponent=0.5,
                      lambda_emb=0.02),
}


def _train(confidence: bool = False):
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, M, 40), rng.integers(0, N, 40)
    values = np.random.default_rng(1).uniform(0.5, 4.0, 40) if confidence else None
    return Interactions.from_pairs(users, items, M, N, values)


def _ids(cases):
    return [f"{c}-{'values' if v else 'binary'}" for c, v in cases]


ALL = [(c, v) for c in CASES for v in (False, True)]
NO_DROPOUT = [(c, v) for c, v in ALL if CASES[c]["keep_prob"] == 1.0]


@pytest.fixture(params=ALL, ids=_ids(ALL))
def case(request):
    yield from _case(*request.param)


@pytest.fixture(params=NO_DROPOUT, ids=_ids(NO_DROPOUT))
def plain_case(request):
    """The cases without dropout, whose sampled batch losses equal F exactly."""
    yield from _case(*request.param)


def _case(name, confidence):
    torch.set_default_dtype(torch.float64)
    try:
        cfg = ENMFConfig(embed_dim=D, init_std=0.5, **CASES[name])
        train = _train(confidence)
        m = ENMF(M, N, cfg, seed=1)
        if cfg.h == "learned":
            with torch.no_grad():
                m.h.copy_(torch.randn(D, generator=torch.Generator().manual_seed(2)))
        yield m, cfg, train
    finally:
        torch.set_default_dtype(torch.float32)


def _F(m, cfg, sw, train, P, Q, h):
    """The brute-force F: every pair, plus λ/2‖·‖² and the per-row ridge (and reg‖h‖² if learned)."""
    c_neg = torch.full((N,), cfg.negative_weight)
    rho = (1 - cfg.keep_prob) / cfg.keep_prob
    sigma = rho * Q ** 2 if rho else None
    out = cf_value_bruteforce(P, Q, h, sigma, train, 1.0, c_neg, cfg.alpha)
    r_user = torch.as_tensor(row_ridge(cfg.reg, cfg.reg_exponent, train.user_counts(), cfg.negative_weight * N))
    r_item = torch.as_tensor(row_ridge(cfg.reg, cfg.reg_exponent, train.item_counts(), cfg.negative_weight * M))
    out = out + (r_user + sw.lam / 2) @ (P ** 2).sum(1) + (r_item + sw.lam / 2) @ (Q ** 2).sum(1)
    return out + (cfg.reg * (h ** 2).sum() if cfg.h == "learned" else 0.0)


def _grad(f, x):
    x = x.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(f(x), x)
    return g


def _stationary(f, x):
    scale = max(1.0, float(_grad(f, torch.zeros_like(x)).abs().max()))
    assert float(_grad(f, x).abs().max()) <= 1e-8 * scale


def test_the_ridge_frequency_scaling_is_rendles():
    r = row_ridge(0.5, 1.0, np.array([0, 3]), 2.0)
    np.testing.assert_allclose(r, [0.5 * 2.0, 0.5 * 5.0])
    np.testing.assert_allclose(row_ridge(0.5, 0.0, np.array([0, 3]), 2.0), [0.5, 0.5])


def test_value_blocks_and_sweeps_at_the_ials_point(case):
    m, cfg, train = case
    sw = m.block_sweeps(train, None, batch_size=4)
    values = [sw.value()]
    h0 = m.h.detach().clone()
    for epoch in range(3):
        sw.sweep(epoch)
        values.append(sw.value())
        with torch.no_grad():
            want = float(_F(m, cfg, sw, train, m.user_emb, m.item_emb, m.h))
        assert values[-1] == pytest.approx(want, rel=1e-12)
    assert all(b <= a * (1 + 1e-12) for a, b in zip(values, values[1:])), values
    P, Q, h = m.user_emb.detach(), m.item_emb.detach(), m.h.detach()
    if cfg.h == "fixed":
        assert torch.equal(h, torch.ones(D)) and torch.equal(h0, h) and not m.h.requires_grad
        assert sw.exact_params() == [m.user_emb, m.item_emb] and m.replicated_params() == []
    else:
        _stationary(lambda x: _F(m, cfg, sw, train, P, Q, x), h)  # h is solved last
    pr = sw.problem
    with torch.no_grad():
        P1 = pr.solve_users(Q, h, sw.sigma(Q), sw.ridge_user)
        s_user = sw.rho * h ** 2 * P ** 2 if sw.rho else None
        Q1 = pr.solve_items(P, h, s_user, sw.ridge_item)
    _stationary(lambda x: _F(m, cfg, sw, train, x, Q, h), P1)
    _stationary(lambda x: _F(m, cfg, sw, train, P, x, h), Q1)


def test_conjugate_gradient_lowers_F_every_step_and_reaches_the_exact_block(case):
    m, cfg, train = case
    sw = m.block_sweeps(train, None, batch_size=4)
    pr = sw.problem
    P, Q, h = m.user_emb.detach().clone(), m.item_emb.detach(), m.h.detach()
    f = lambda x: float(_F(m, cfg, sw, train, x, Q, h))  # noqa: E731
    exact = pr.solve_users(Q, h, sw.sigma(Q), sw.ridge_user)
    pr.method = "cg"
    last = f(P)
    for steps in (1, 2, 3):
        x = pr.solve_users(Q, h, sw.sigma(Q), sw.ridge_user, x0=P)
        assert f(x) <= last * (1 + 1e-12)
        last = f(x)
    pr.steps = 40
    x = pr.solve_users(Q, h, sw.sigma(Q), sw.ridge_user, x0=P)
    torch.testing.assert_close(x, exact, rtol=1e-9, atol=1e-10)


def test_cg_sweeps_never_increase_F():
    torch.set_default_dtype(torch.float64)
    try:
        cfg = ENMFConfig(embed_dim=D, init_std=0.5, **CASES["learned-h"])
        m = ENMF(M, N, cfg, seed=3)
        sw = m.block_sweeps(_train(True), None, batch_size=4, block_solver="cg", cg_steps=2)
        values = [sw.value()]
        for epoch in range(5):
            sw.sweep(epoch)
            values.append(sw.value())
        assert all(b <= a * (1 + 1e-12) for a, b in zip(values, values[1:])), values
        assert values[-1] < values[0]
    finally:
        torch.set_default_dtype(torch.float32)


def test_cg_rows_solves_shared_terms_diag_and_per_row_ridge():
    g = torch.Generator().manual_seed(0)
    n, d, n_src = 6, 5, 8
    src = torch.randn(n_src, d, generator=g, dtype=torch.float64)
    indptr = torch.tensor([0, 2, 2, 5, 6, 8, 9])
    idx = torch.randint(0, n_src, (9,), generator=g)
    w = torch.rand(9, generator=g, dtype=torch.float64) + 0.1
    G = src.T @ src
    shared = [(G, torch.rand(n, generator=g, dtype=torch.float64)), (torch.eye(d, dtype=torch.float64) * 0.3, None)]
    terms = [Term(indptr, idx, src, w)]
    diag = torch.rand(n, d, generator=g, dtype=torch.float64)
    ridge = torch.rand(n, generator=g, dtype=torch.float64)
    b = torch.randn(n, d, generator=g, dtype=torch.float64)
    rhs = lambda rows: b.index_select(0, rows)  # noqa: E731
    exact = solve_rows(n, shared, terms, diag, ridge, rhs, torch.float64)
    x = cg_rows(n, shared, terms, diag, ridge, rhs, torch.zeros(n, d, dtype=torch.float64), steps=30)
    torch.testing.assert_close(x, exact, rtol=1e-10, atol=1e-12)


def test_first_order_objective_is_the_same_F(plain_case):
    """Σ of the batch losses over an epoch (no dropout) + the constant Σ c⁺ = F, value and gradient."""
    m, cfg, train = plain_case
    sw = m.block_sweeps(train, None, batch_size=4)
    obj = CFObjective(m, train, cfg, seed=0)
    c_pos = 1.0 + cfg.alpha * (train.values if train.values is not None else np.ones(train.nnz))
    total = sum(obj(torch.arange(lo, min(M, lo + 4)), 0)[0] for lo in range(0, M, 4)) + float(c_pos.sum())
    want = _F(m, cfg, sw, train, m.user_emb, m.item_emb, m.h)
    assert float(total.detach()) == pytest.approx(float(want), rel=1e-10)
    g1 = torch.autograd.grad(total, [m.user_emb, m.item_emb])
    g2 = torch.autograd.grad(_F(m, cfg, sw, train, m.user_emb, m.item_emb, m.h), [m.user_emb, m.item_emb])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", [c for c in CASES if CASES[c]["keep_prob"] == 1.0])
def test_fold_in_is_the_trained_user_block(name):
    """Fold-in histories are unweighted (binary); its dropout form is tested in test_coldstart."""
    gen = _case(name, False)
    m, cfg, train = next(gen)
    sw = m.block_sweeps(train, None, batch_size=4)
    sw.sweep(0)
    terms = m.fold_in_terms(train.item_counts())
    fold = FoldIn(m.item_emb.detach(), m.h.detach(), terms.c_pos, terms.c_neg, terms.lam, ridge=0.0,
                  reg=terms.reg, reg_exponent=terms.reg_exponent)
    p = fold.user_vectors(torch.as_tensor(train.indptr), torch.as_tensor(train.indices))
    want = sw.problem.solve_users(m.item_emb.detach(), m.h.detach(), None, sw.ridge_user)
    torch.testing.assert_close(p, want, rtol=1e-9, atol=1e-12)
    gen.close()


# ---------------------------------------------------------------- implicit
def _implicit_step(P0, Q0, csr, factors, reg, alpha, iterations=1, use_cg=False):
    implicit = pytest.importorskip("implicit")
    from implicit.cpu.als import AlternatingLeastSquares

    als = AlternatingLeastSquares(factors=factors, regularization=reg, alpha=alpha, iterations=iterations,
                                  use_cg=use_cg, calculate_training_loss=False, num_threads=1, random_state=0,
                                  dtype=np.float64)
    als.user_factors = P0.copy()
    als.item_factors = Q0.copy()
    assert implicit.__version__
    als.fit(csr, show_progress=False)
    return als.user_factors, als.item_factors


@pytest.mark.parametrize("confidence", [False, True], ids=["binary", "values"])
def test_one_sweep_is_one_iteration_of_implicits_exact_als(confidence):
    """implicit: c = α_imp·r on stored pairs, 1 elsewhere, ridge λ.  Ours at h fixed, no dropout,
    c⁻ = 1: binary data with α = α_imp − 1 (c⁺ = 1 + α); confidences r with α null (c⁺ = r) and
    values α_imp·r."""
    scipy = pytest.importorskip("scipy.sparse")
    alpha_imp, reg = 6.0, 0.4
    train = _train(confidence)
    if confidence:
        train.values = train.values * alpha_imp
        cfg = ENMFConfig(embed_dim=D, h="fixed", keep_prob=1.0, negative_weight=1.0, reg=reg)
    else:
        cfg = ENMFConfig(embed_dim=D, h="fixed", keep_prob=1.0, negative_weight=1.0, alpha=alpha_imp - 1, reg=reg)
    torch.set_default_dtype(torch.float64)
    try:
        m = ENMF(M, N, cfg, seed=4)
        P0, Q0 = m.user_emb.detach().numpy().copy(), m.item_emb.detach().numpy().copy()
        m.block_sweeps(train, None, batch_size=4).sweep(0)
    finally:
        torch.set_default_dtype(torch.float32)
    values = train.values / alpha_imp if confidence else np.ones(train.nnz)
    csr = scipy.csr_matrix((values, train.indices, train.indptr), shape=(M, N))
    P, Q = _implicit_step(P0, Q0, csr, D, reg, alpha_imp)
    np.testing.assert_allclose(m.user_emb.detach().numpy(), P, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(m.item_emb.detach().numpy(), Q, rtol=1e-5, atol=1e-7)


def test_cg_sweep_is_implicits_cg_iteration():
    """block_solver cg, 3 steps, from the same factors: implicit's default (use_cg=True)."""
    scipy = pytest.importorskip("scipy.sparse")
    alpha_imp, reg = 6.0, 0.4
    train = _train()
    cfg = ENMFConfig(embed_dim=D, h="fixed", keep_prob=1.0, negative_weight=1.0, alpha=alpha_imp - 1, reg=reg)
    torch.set_default_dtype(torch.float64)
    try:
        m = ENMF(M, N, cfg, seed=4)
        P0, Q0 = m.user_emb.detach().numpy().copy(), m.item_emb.detach().numpy().copy()
        m.block_sweeps(train, None, batch_size=4, block_solver="cg", cg_steps=3).sweep(0)
    finally:
        torch.set_default_dtype(torch.float32)
    csr = scipy.csr_matrix((np.ones(train.nnz), train.indices, train.indptr), shape=(M, N))
    P, Q = _implicit_step(P0, Q0, csr, D, reg, alpha_imp, use_cg=True)
    np.testing.assert_allclose(m.user_emb.detach().numpy(), P, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(m.item_emb.detach().numpy(), Q, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_k_sweeps_on_ml100k_kgat_match_implicit_in_test_metrics():
    """5 sweeps from implicit's factors (d 32, α_imp 8, λ 2) against 5 of implicit's exact
    iterations, both scored by our evaluator: Recall@20 and NDCG@20 agree within 0.001."""
    scipy = pytest.importorskip("scipy.sparse")
    from conftest import shared_dataset
    from jnskr.data import load_dataset
    from jnskr.evaluation.evaluator import evaluate

    ds = load_dataset(str(shared_dataset("ml100k-kgat")), format="kgat")
    tr = ds.train
    d, alpha_imp, reg, k = 32, 8.0, 2.0, 5
    cfg = ENMFConfig(embed_dim=d, h="fixed", keep_prob=1.0, negative_weight=1.0, alpha=alpha_imp - 1, reg=reg)
    m = ENMF(tr.n_users, tr.n_items, cfg, seed=7)
    P0, Q0 = m.user_emb.detach().numpy().copy(), m.item_emb.detach().numpy().copy()
    sw = m.block_sweeps(tr, None, batch_size=256)
    for epoch in range(k):
        sw.sweep(epoch)
    csr = scipy.csr_matrix((np.ones(tr.nnz, dtype=np.float32), tr.indices, tr.indptr), shape=(tr.n_users, tr.n_items))
    P, Q = _implicit_step(P0.astype(np.float64), Q0.astype(np.float64), csr, d, reg, alpha_imp, iterations=k)

    class Fixed:
        def __init__(self, p, q):
            self.p, self.q = torch.as_tensor(p, dtype=torch.float32), torch.as_tensor(q, dtype=torch.float32)

        def score(self, users):
            return self.p.index_select(0, users) @ self.q.T

    ours = evaluate(Fixed(m.user_emb.detach(), m.item_emb.detach()), ds.test, tr, ks=[20])
    theirs = evaluate(Fixed(P, Q), ds.test, tr, ks=[20])
    for key in ("recall@20", "ndcg@20"):
        assert abs(ours[key] - theirs[key]) <= 1e-3, (key, ours[key], theirs[key])
    assert ours["recall@20"] > 0.2  # a trained model, not two equal failures


def test_jnskr_first_order_objective_with_the_ridge_is_F():
    """JNSKR's item-batch losses over an epoch (no dropout, no λ_emb) + their dropped constants =
    the F of its exact sweeps, with α, the frequency-scaled ridge and h fixed; gradients too."""
    from jnskr.data.dataset import KnowledgeGraph
    from jnskr.data.kg import build_item_kg
    from jnskr.models.jnskr import JNSKR, JNSKRConfig
    from jnskr.models.jnskr.objective import JNSKRObjective

    torch.set_default_dtype(torch.float64)
    try:
        kg = build_item_kg(KnowledgeGraph(np.array([0, 0, 1, 2, 2, 3, 5, 6]), np.array([0, 1, 0, 1, 2, 0, 2, 1]),
                                          np.array([8, 9, 9, 10, 8, 11, 10, 11]), 12, 3), n_items=N)
        train = _train(True)
        cfg = JNSKRConfig(embed_dim=D, attention_dim=3, keep_prob=(1.0, 1.0), c0=3.0, c1=4.0, mu=0.3, kappa=1.2,
                          lambda_emb=0.0, lambda_att=0.0, init_std=0.5, alpha=2.0, reg=0.3, reg_exponent=0.7,
                          h="fixed")
        m = JNSKR(M, N, kg, cfg, seed=5)
        obj = JNSKRObjective(m, train, kg, cfg, seed=0)
        sw = m.block_sweeps(train, kg, batch_size=3)
        const = cfg.kappa * float((1 + cfg.alpha * train.values).sum()) + cfg.mu * cfg.w_pos * kg.n_facts
        total = sum(obj(torch.arange(lo, min(N, lo + 3)), 0)[0] for lo in range(0, N, 3)) + const
        assert float(total.detach()) == pytest.approx(sw.value(), rel=1e-8)  # c⁻ is stored in float32
        assert not m.h.requires_grad and torch.equal(m.h, torch.ones(D))
        params = [m.user_emb, m.item_emb, m.tail_emb]
        g = torch.autograd.grad(total, params)
        # the same F through the sweeps' value path, differentiated by finite differences on one entry
        eps = 1e-6
        with torch.no_grad():
            m.item_emb[2, 1] += eps
            up = sw.value()
            m.item_emb[2, 1] -= 2 * eps
            down = sw.value()
            m.item_emb[2, 1] += eps
        assert float(g[1][2, 1]) == pytest.approx((up - down) / (2 * eps), rel=1e-5)
    finally:
        torch.set_default_dtype(torch.float32)
