"""LightGCN as an encoder trained with the whole-data loss: the propagation against a dense
D^-½AD^-½ layer-mean reference in float64, the objective against the brute-force loss, and the
model contract."""

import numpy as np
import pytest
import torch

from contract import ModelContract
from jnskr.data.dataset import Interactions
from jnskr.losses import nonsampling_cf_loss_bruteforce
from jnskr.models.lightgcn import LightGCN, LightGCNConfig, normalized_adjacency, propagate
from jnskr.training.dropout import keyed_dropout
from jnskr.models.mf.objective import CFObjective


def _toy():
    users = np.array([0, 0, 1, 2, 2, 2, 3])
    items = np.array([0, 1, 1, 0, 2, 3, 3])
    return Interactions.from_pairs(users, items, 5, 4)  # user 4 and no item are isolated


@pytest.mark.parametrize("layers", [0, 1, 2, 3])
def test_propagation_equals_the_dense_normalised_adjacency_layer_mean(layers):
    train = _toy()
    g = torch.Generator().manual_seed(layers)
    P0 = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    Q0 = torch.randn(4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    a, a_t = normalized_adjacency(train, torch.float64)
    P, Q = propagate(a, a_t, P0, Q0, layers)
    # dense reference on the (M + N) x (M + N) bipartite graph
    A = torch.zeros(9, 9, dtype=torch.float64)
    u, i = train.pairs()
    A[u, 5 + i] = 1.0
    A[5 + i, u] = 1.0
    deg = A.sum(1)
    dinv = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))
    L = dinv[:, None] * A * dinv[None, :]
    E = torch.cat([P0, Q0])
    layers_out = [E]
    for _ in range(layers):
        layers_out.append(L @ layers_out[-1])
    want = torch.stack(layers_out).mean(0)
    torch.testing.assert_close(torch.cat([P, Q]), want, rtol=1e-12, atol=1e-12)
    # gradients through the hand-written backward
    G = torch.randn(9, 3, dtype=torch.float64, generator=g)
    got = torch.autograd.grad((torch.cat([P, Q]) * G).sum(), (P0, Q0))
    ref = torch.autograd.grad((want * G).sum(), (P0, Q0))
    for x, y in zip(got, ref):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("weighting", ["uniform", "popularity"])
def test_objective_is_the_whole_data_loss_on_the_propagated_vectors(weighting):
    train = _toy()
    cfg = LightGCNConfig(embed_dim=3, layers=2, keep_prob=0.8, negative_weight=0.3, weighting=weighting, c0=2.0)
    m = LightGCN(5, 4, cfg, seed=1).double()
    obj = CFObjective(m, train, cfg, seed=5)
    if obj.c_neg is not None:
        obj.c_neg = obj.c_neg.double()
    m.use_interactions(train)
    m.train()
    units = torch.tensor([2, 0, 3])
    loss, _ = obj(units, epoch=2)
    P, Q = m.encode()
    by_unit = train if weighting == "uniform" else train.transpose()
    batch_tab, other = (P, Q) if weighting == "uniform" else (Q, P)
    b = keyed_dropout(batch_tab[units], 0.2, 5, 2, units, stream=0)
    po, pb = [], []
    for r, x in enumerate(units.tolist()):
        for o in by_unit.row(x):
            po.append(int(o))
            pb.append(r)
    c_neg = torch.full((3,), 0.3, dtype=torch.float64) if weighting == "uniform" else obj.c_neg[units]
    ref = nonsampling_cf_loss_bruteforce(other, b, m.h, torch.tensor(po), torch.tensor(pb), 1.0, c_neg) - len(po)
    assert float(loss) == pytest.approx(float(ref), rel=1e-10)
    params = [m.user_emb, m.item_emb]
    for x, y in zip(torch.autograd.grad(loss, params), torch.autograd.grad(ref, params)):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)


class TestLightGCN(ModelContract):
    model_name = "lightgcn"
    overrides = ("lightgcn.embed_dim=16", "lightgcn.negative_weight=0.05", "train.lr=0.1")
