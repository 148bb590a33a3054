"""`train.solver: als`: every exact block is the exact minimiser of the objective F, a block step
never increases F, and the F that training reports equals the brute-force F (float64, small
problems; docs/solver.md) -- with every pair weighing c_pos, and with per-pair confidences
(c⁺_uv = c_pos · value, `data.weight: confidence`)."""

import numpy as np
import pytest
import torch

from jnskr.data.dataset import Interactions, KnowledgeGraph
from jnskr.data.kg import build_item_kg
from jnskr.models.jnskr import JNSKR, JNSKRConfig
from jnskr.models.mf import ENMF, ENMFConfig
from jnskr.models.mf.problem import CFProblem, cf_value_bruteforce
from jnskr.models.jnskr.sweeps import JNSKRSweeps, kg_value_bruteforce
from jnskr.training.weights import cf_negative_weights, kg_negative_weights, row_ridge

REL = 1e-8


def _train(confidence: bool = False):
    """40 random pairs (duplicates merged); with `confidence`, per-pair values in [0, 4) (one is 0)."""
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 9, 40), rng.integers(0, 7, 40)
    values = None
    if confidence:
        values = np.random.default_rng(1).uniform(0.0, 4.0, 40)
        values[users * 7 + items == users[0] * 7 + items[0]] = 0.0
    return Interactions.from_pairs(users, items, 9, 7, values)


def _kg():
    h = np.array([0, 0, 1, 2, 2, 3, 5, 6])
    r = np.array([0, 1, 0, 1, 2, 0, 2, 1])
    t = np.array([8, 9, 9, 10, 8, 11, 10, 11])
    return build_item_kg(KnowledgeGraph(h, r, t, 12, 3), n_items=7)


def _grad(f, x):
    x = x.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(f(x), x)
    return g


def _assert_stationary(f, x):
    g = _grad(f, x)
    scale = max(1.0, float(_grad(f, torch.zeros_like(x)).abs().max()))
    assert float(g.abs().max()) <= REL * scale, float(g.abs().max())


# ------------------------------------------------------------------- ENMF
@pytest.fixture(params=[False, True], ids=["c_pos", "confidence"])
def enmf(request):
    torch.set_default_dtype(torch.float64)
    try:
        train = _train(request.param)
        cfg = ENMFConfig(embed_dim=4, keep_prob=0.6, negative_weight=0.3, lambda_emb=0.02, init_std=0.5)
        m = ENMF(9, 7, cfg, seed=1)
        with torch.no_grad():
            m.h.copy_(torch.randn(4, generator=torch.Generator().manual_seed(2)))
        yield m, m.block_sweeps(train, None, batch_size=4), train
    finally:
        torch.set_default_dtype(torch.float32)


def _enmf_F(sw, train, P, Q, h):
    c_neg = torch.full((7,), 0.3)
    sigma = sw.rho * Q ** 2
    return cf_value_bruteforce(P, Q, h, sigma, train, 1.0, c_neg) + sw.lam / 2 * ((P ** 2).sum() + (Q ** 2).sum())


def test_enmf_value_equals_the_bruteforce_objective(enmf):
    m, sw, train = enmf
    with torch.no_grad():
        assert sw.value() == pytest.approx(float(_enmf_F(sw, train, m.user_emb, m.item_emb, m.h)), rel=1e-12)


def test_enmf_blocks_are_exact_minimisers_and_sweeps_never_increase_F(enmf):
    m, sw, train = enmf
    values = [sw.value()]
    for epoch in range(4):
        sw.sweep(epoch)
        values.append(sw.value())
        with torch.no_grad():
            assert values[-1] == pytest.approx(float(_enmf_F(sw, train, m.user_emb, m.item_emb, m.h)), rel=1e-12)
    assert all(b <= a * (1 + 1e-12) for a, b in zip(values, values[1:])), values
    P, Q, h = m.user_emb.detach(), m.item_emb.detach(), m.h.detach()
    _assert_stationary(lambda x: _enmf_F(sw, train, P, Q, x), h)  # h was solved last
    pr = sw.problem
    with torch.no_grad():
        P1 = pr.solve_users(Q, h, sw.sigma(Q), sw.lam / 2)
        Q1 = pr.solve_items(P, h, sw.rho * h ** 2 * P ** 2, sw.lam / 2)
    _assert_stationary(lambda x: _enmf_F(sw, train, x, Q, h), P1)
    _assert_stationary(lambda x: _enmf_F(sw, train, P, x, h), Q1)


# ------------------------------------------------------------------ JNSKR
#: JNSKR at its defaults, and with the iALS keys (a confidence slope, the frequency-scaled ridge on
#: users, item bases and h; h learned or fixed)
JNSKR_KEYS = {"plain": {}, "ridge": dict(alpha=3.0, reg=0.4, reg_exponent=0.5),
              "ridge-fixed-h": dict(alpha=3.0, reg=0.4, reg_exponent=0.5, h="fixed")}


@pytest.fixture(params=[(k, c) for k in JNSKR_KEYS for c in (False, True)],
                ids=[f"{k}-{'confidence' if c else 'c_pos'}" for k in JNSKR_KEYS for c in (False, True)])
def jnskr(request):
    keys, confidence = request.param
    torch.set_default_dtype(torch.float64)
    try:
        train, kg = _train(confidence), _kg()
        cfg = JNSKRConfig(embed_dim=5, attention_dim=3, keep_prob=(0.8, 0.7), c0=3.0, c1=4.0, mu=0.3, kappa=1.2,
                          lambda_emb=0.05, lambda_att=0.1, init_std=0.5, **JNSKR_KEYS[keys])
        m = JNSKR(9, 7, kg, cfg, seed=3)
        if cfg.h == "learned":
            with torch.no_grad():
                m.h.copy_(torch.randn(5, generator=torch.Generator().manual_seed(4)))
        yield m, JNSKRSweeps(m, train, kg, cfg, batch_size=3), train, kg, cfg
    finally:
        torch.set_default_dtype(torch.float32)


def _jnskr_F(m, sw, train, kg, cfg):
    q, e = m.item_vectors(), m.item_emb
    sigma = sw._sigma(q, e)
    cn = torch.as_tensor(cf_negative_weights(train.item_counts(), cfg.c0, cfg.beta))
    wn = torch.as_tensor(kg_negative_weights(kg.degrees(), train.item_counts(), cfg.c1, cfg.beta, cfg.kg_neg_weight))
    F = cfg.kappa * cf_value_bruteforce(m.users(), q, m.h, sigma, train, cfg.c_pos, cn, cfg.alpha)
    F = F + cfg.mu * kg_value_bruteforce(e, m.rel_emb[: m.n_relations], m.tails(), kg, cfg.w_pos, wn, sw.rho_k)
    F = F + sw.lam / 2 * sum((t ** 2).sum() for t in m.embedding_tables())
    if cfg.reg:
        r_user = row_ridge(cfg.reg, cfg.reg_exponent, train.user_counts(), cn.sum().item())
        r_item = row_ridge(cfg.reg, cfg.reg_exponent, train.item_counts(), cn.numpy() * train.n_users)
        F = F + torch.as_tensor(r_user) @ (m.users() ** 2).sum(1) + torch.as_tensor(r_item) @ (e ** 2).sum(1)
        F = F + (cfg.reg * (m.h ** 2).sum() if cfg.h == "learned" else 0.0)
        F = F + cfg.reg * ((m.tails() ** 2).sum() + (m.rel_emb[: m.n_relations] ** 2).sum())
    return F + sw.lam_att / 2 * sum((p ** 2).sum() for p in m.attention_params())


def test_jnskr_value_equals_the_bruteforce_objective(jnskr):
    m, sw, train, kg, cfg = jnskr
    with torch.no_grad():
        assert sw.value() == pytest.approx(float(_jnskr_F(m, sw, train, kg, cfg)), rel=1e-12)


@pytest.mark.parametrize("block", ["users", "h", "bases"])
def test_jnskr_block_solution_zeroes_its_gradient_and_lowers_F(jnskr, block):
    m, sw, train, kg, cfg = jnskr
    if block == "h" and cfg.h == "fixed":
        h0 = m.h.detach().clone()
        sw.sweep(0)
        assert torch.equal(m.h, h0) and torch.equal(h0, torch.ones(5)) and all(p is not m.h for p in sw.exact_params())
        return
    param = {"users": m.user_emb, "h": m.h, "bases": m.item_emb}[block]
    before = sw.value()
    with torch.no_grad():
        q = m.item_vectors()
        if block == "users":
            new = sw.problem.solve_users(q, m.h, sw._sigma(q, m.item_emb), sw.ridge_user / cfg.kappa)
        elif block == "h":
            new = sw.problem.solve_h(m.users(), q, sw._sigma(q, m.item_emb), sw.reg / cfg.kappa)
        else:
            new = sw._solve_bases((q - m.item_emb).double())
        param.copy_(new)
    assert sw.value() <= before * (1 + 1e-12)
    m.zero_grad()
    F = _jnskr_F(m, sw, train, kg, cfg)
    (g,) = torch.autograd.grad(F, param)
    assert float(g.abs().max()) <= REL * max(1.0, abs(float(F))), float(g.abs().max())


def test_jnskr_reported_objective_is_the_bruteforce_one_at_every_sweep(jnskr):
    m, sw, train, kg, cfg = jnskr
    for epoch in range(3):
        before = sw.value()
        sw.sweep(epoch)
        with torch.no_grad():
            after = sw.value()
            assert after == pytest.approx(float(_jnskr_F(m, sw, train, kg, cfg)), rel=1e-12)
        assert after <= before * (1 + 1e-12)


def test_als_refuses_what_it_cannot_solve_exactly():
    from jnskr.config import build_config
    from jnskr.errors import ConfigError

    with pytest.raises(ConfigError, match="no exact blocks"):
        build_config("default", overrides=["model=bpr", "train.solver=als"])
    with pytest.raises(ConfigError, match="tie_item_tail_embeddings"):
        build_config("default", overrides=["jnskr.tie_item_tail_embeddings=true", "train.solver=als"])
    assert build_config("default", overrides=["jnskr.tie_item_tail_embeddings=true"]).train.solver == "adagrad"
    with pytest.raises(ConfigError, match="tie_item_tail_embeddings"):
        JNSKRSweeps(JNSKR(9, 7, _kg(), JNSKRConfig(embed_dim=4, tie_item_tail_embeddings=True)), _train(), _kg(),
                    JNSKRConfig(tie_item_tail_embeddings=True), 3)
    assert build_config("default", overrides=["train.protocol=paper"]).train.solver == "adagrad"
    assert build_config("default").train.solver == "als"
    assert build_config("default", overrides=["model=lightgcn"]).train.solver == "adagrad"


def test_cf_problem_weights_follow_the_run():
    train = _train()
    pr = CFProblem(train, 1.5, np.arange(7) * 0.1, "cpu")
    u, i = train.pairs()
    np.testing.assert_allclose(pr.w_user.numpy(), 1.5 - np.arange(7)[i] * 0.1)
    assert pr.cp_user is None and pr.cp_item is None


def test_cf_problem_confidence_weights_follow_the_pairs():
    """c⁺_uv = c_pos · value in both CSR orders; all-ones values are the scalar c_pos exactly."""
    train = _train(confidence=True)
    pr = CFProblem(train, 1.5, np.arange(7) * 0.1, "cpu")
    u, i = train.pairs()
    np.testing.assert_allclose(pr.cp_user.numpy(), 1.5 * train.values)
    np.testing.assert_allclose(pr.w_user.numpy(), 1.5 * train.values - np.arange(7)[i] * 0.1)
    by_item = train.transpose()
    np.testing.assert_allclose(pr.cp_item.numpy(), 1.5 * by_item.values)
    np.testing.assert_allclose(pr.w_item.numpy(), 1.5 * by_item.values - np.repeat(np.arange(7) * 0.1,
                                                                                   by_item.user_counts()))
    plain = CFProblem(_train(), 1.5, np.arange(7) * 0.1, "cpu")
    ones = _train()
    ones.values = np.ones(ones.nnz)
    same = CFProblem(ones, 1.5, np.arange(7) * 0.1, "cpu")
    assert same.cp_user is None and torch.equal(same.w_user, plain.w_user) and torch.equal(same.w_item, plain.w_item)


def test_jnskr_cg_bases_reach_the_exact_block(jnskr):
    """train.block_solver cg on JNSKR's item bases (CF + KG terms, dropout diagonals, per-row
    ridge): enough steps give the Cholesky solution; 2 steps already lower F."""
    m, sw, train, kg, cfg = jnskr
    with torch.no_grad():
        msg = (m.item_vectors() - m.item_emb).double()
        exact = sw._solve_bases(msg)
        before = sw.value()
        sw.problem.method, sw.problem.steps = "cg", 2
        m.item_emb.copy_(sw._solve_bases(msg))
        assert sw.value() <= before * (1 + 1e-12)
        sw.problem.steps = 60
        torch.testing.assert_close(sw._solve_bases(msg), exact, rtol=1e-8, atol=1e-10)
