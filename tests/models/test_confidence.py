"""`data.weight: confidence`: the whole-data models weigh each training pair by c⁺_uv = c_pos · value.

* each model's batch objective equals the brute-force loss with those weights, in value and
  gradient (float64; the efficient terms alone are in tests/models/test_losses.py, tests/models/test_fused.py,
  the exact blocks in tests/models/test_solver.py);
* training with confidences other than 1 gives another model than training without them, and
  all-ones values give bit-identical weights and scores to no values at all;
* the models whose loss is sampled (or that have none) say once that they ignore confidence.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import synthetic_dataset, tiny_config
from jnskr.api import Recommender
from jnskr.config import build_config
from jnskr.data.dataset import Interactions, KnowledgeGraph
from jnskr.data.kg import build_item_kg
from jnskr.losses import nonsampling_cf_loss_bruteforce
from jnskr.models.jnskr import JNSKR, JNSKRConfig
from jnskr.models.lightgcn import LightGCN, LightGCNConfig
from jnskr.models.mf import ENMF, ENMFConfig
from jnskr.training.dropout import keyed_dropout
from jnskr.models.jnskr.objective import JNSKRObjective
from jnskr.models.mf.objective import CFObjective
from jnskr.training.weights import positive_weights

USERS = np.array([0, 0, 1, 2, 3, 3, 4, 4, 1])
ITEMS = np.array([0, 1, 1, 2, 0, 2, 3, 1, 3])
VALUES = np.array([3.0, 0.5, 7.0, 1.0, 0.0, 2.5, 4.0, 1.5, 0.25])  # one zero: that pair weighs nothing


def _train():
    return Interactions.from_pairs(USERS, ITEMS, 5, 4, VALUES)


def _pairs_of(csr, units):
    """(other side, batch row, value) of every positive pair of the batch `units` (by hand)."""
    other, row, val = [], [], []
    for r, x in enumerate(units.tolist()):
        other += [int(o) for o in csr.row(x)]
        row += [r] * len(csr.row(x))
        val += [float(v) for v in csr.row_values(x)]
    return torch.tensor(other), torch.tensor(row), torch.tensor(val, dtype=torch.float64)


def _assert_same(loss, ref, params):
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-10)
    got = torch.autograd.grad(loss, params, allow_unused=True)
    want = torch.autograd.grad(ref, params, allow_unused=True)
    for p, g, w in zip(params, got, want):
        g = torch.zeros_like(p) if g is None else g
        w = torch.zeros_like(p) if w is None else w
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("model", ["enmf", "lightgcn"])
@pytest.mark.parametrize("weighting", ["uniform", "popularity"])
def test_cf_objective_weighs_each_pair_by_its_confidence(model, weighting):
    train = _train()
    if model == "enmf":
        cfg = ENMFConfig(embed_dim=5, keep_prob=0.6, negative_weight=0.3, weighting=weighting, c0=2.0, init_std=0.3)
        m = ENMF(5, 4, cfg, seed=3).double()
    else:
        cfg = LightGCNConfig(embed_dim=3, layers=2, keep_prob=0.8, negative_weight=0.3, weighting=weighting, c0=2.0)
        m = LightGCN(5, 4, cfg, seed=1).double()
        m.use_interactions(train)
    obj = CFObjective(m, train, cfg, seed=11)
    if obj.c_neg is not None:
        obj.c_neg = obj.c_neg.double()
    m.train()
    units = torch.tensor([3, 0, 4, 1] if weighting == "uniform" else [2, 0, 1])
    loss, _ = obj(units, epoch=4)
    P, Q = m.encode()
    by_unit = train if weighting == "uniform" else train.transpose()
    batch_tab, other_tab = (P, Q) if weighting == "uniform" else (Q, P)
    b = keyed_dropout(batch_tab[units], 1.0 - cfg.keep_prob, 11, 4, units, stream=0)
    po, pb, c_pos = _pairs_of(by_unit, units)
    c_neg = torch.full((len(units),), 0.3, dtype=torch.float64) if weighting == "uniform" else obj.c_neg[units]
    ref = nonsampling_cf_loss_bruteforce(other_tab, b, m.h, po, pb, c_pos, c_neg) - c_pos.sum()
    _assert_same(loss, ref, [m.user_emb, m.item_emb, *([m.h] if model == "enmf" else [])])


def test_jnskr_objective_weighs_each_pair_by_c_pos_times_its_confidence():
    kg = build_item_kg(KnowledgeGraph(np.array([0, 1, 2, 3]), np.array([0, 1, 0, 1]), np.array([4, 5, 5, 6]), 7, 2),
                       n_items=4)
    cfg = JNSKRConfig(embed_dim=6, attention_dim=3, keep_prob=(0.8, 0.7), c0=3.0, c1=4.0, c_pos=1.7, mu=0.0,
                      lambda_emb=0.0, lambda_att=0.0, init_std=0.3)
    m = JNSKR(5, 4, kg, cfg, seed=2).double()
    train = _train()
    obj = JNSKRObjective(m, train, kg, cfg, seed=11)
    obj.c_neg = obj.c_neg.double()
    m.train()
    items = torch.tensor([2, 0, 3, 1])
    loss, _ = obj(items, epoch=3)
    q, _ = obj.item_inputs(items, epoch=3)
    pu, pi, value = _pairs_of(train.transpose(), items)
    c_pos = cfg.c_pos * value
    ref = nonsampling_cf_loss_bruteforce(m.user_emb, q, m.h, pu, pi, c_pos, obj.c_neg[items]) - c_pos.sum()
    _assert_same(loss, ref, [p for p in m.parameters() if p.requires_grad])


def test_all_ones_values_are_the_unweighted_path():
    assert positive_weights(None, 2.0) is None
    assert positive_weights(np.ones(4), 2.0) is None
    np.testing.assert_array_equal(positive_weights(np.array([1.0, 0.5, 3.0]), 2.0), [2.0, 1.0, 6.0])


# --------------------------------------------------------------- training
def _with_values(ds, values):
    t = ds.train
    return replace(ds, train=Interactions(t.indptr, t.indices, t.n_items, values))


def _fit(model, ds, *sets):
    cfg = build_config("default", overrides=[
        f"model={model}", "device=cpu", "train.epochs=4", "train.batch_size=16", "eval.ks=[5,10]",
        "jnskr.embed_dim=16", "enmf.embed_dim=16", "jnskr.c0=20", "jnskr.c1=20", *sets])
    rec = Recommender(cfg).fit(ds, progress=None)
    return torch.from_numpy(rec.score([f"u{u}" for u in range(ds.n_users)]))


@pytest.mark.parametrize("model,sets", [("jnskr", ()), ("jnskr", ("train.solver=adagrad",)), ("enmf", ()),
                                        ("lightgcn", ())])
def test_confidence_changes_the_model_and_all_ones_change_nothing(model, sets):
    ds = synthetic_dataset()
    rng = np.random.default_rng(7)
    plain = _fit(model, ds, *sets)
    ones = _fit(model, _with_values(ds, np.ones(ds.train.nnz)), *sets)
    assert torch.equal(plain, ones)
    weighted = _fit(model, _with_values(ds, rng.uniform(0.2, 5.0, ds.train.nnz)), *sets)
    assert torch.isfinite(weighted).all()
    assert not torch.allclose(plain, weighted, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("model,uses", [("popularity", False), ("bpr", False), ("jnskr_sampled", False),
                                        ("enmf", True)])
def test_models_that_ignore_confidence_say_so_once(model, uses, caplog):
    ds = _with_values(synthetic_dataset(), np.full(synthetic_dataset().train.nnz, 2.0))
    with caplog.at_level(logging.WARNING, logger="jnskr"):
        Recommender(tiny_config(model, 1)).fit(ds, progress=None)
    said = [r for r in caplog.records if "ignores the per-pair confidence" in r.getMessage()]
    assert len(said) == (0 if uses else 1)
    if said:
        assert model in said[0].getMessage() and "jnskr" in said[0].getMessage()
