"""Item-based KNN: the neighbour table and the scores against a brute-force dense float64
computation (top-k truncation, shrinkage, ties, confidence values, blocks of every size), the
saved table of a confidence-weighted run, the model contract, and end-to-end runs."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from conftest import DATA, synthetic_dataset, tiny_config
from contract import ModelContract
from jnskr.api import Recommender
from jnskr.data.dataset import Interactions
from jnskr.models.itemknn import ItemKNN, ItemKNNConfig, neighbour_table


def _toy(weighted: bool = False) -> Interactions:
    """6 users x 7 items: item 5 has no interaction (zero norm), items 1 and 6 have the same users
    (exactly tied similarities when binary), item 4 one user; user 5 has no history."""
    users = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 0, 1, 4])
    items = np.array([0, 1, 2, 1, 3, 0, 2, 3, 0, 4, 1, 2, 3, 6, 6, 6])
    values = np.array([1.0, 2.0, 0.5, 3.0, 1.0, 4.0, 1.5, 1.0, 2.5, 1.0, 1.0, 0.25, 2.0, 2.0, 3.0, 0.5])
    return Interactions.from_pairs(users, items, 6, 7, values if weighted else None)


def _dense(train: Interactions, weighted: bool) -> np.ndarray:
    x = np.zeros((train.n_users, train.n_items))
    u, i = train.pairs()
    x[u, i] = train.values if weighted else 1.0
    return x


def brute_force(x: np.ndarray, k: int, shrink: float) -> np.ndarray:
    """S [N, N]: S[i, j] = sim(i, j) for the k other items j most similar to i (ties: lower j)."""
    n = x.shape[1]
    S = np.zeros((n, n))
    for i in range(n):
        sims = []
        for j in range(n):
            if j == i:
                continue
            den = np.linalg.norm(x[:, i]) * np.linalg.norm(x[:, j]) + shrink
            sims.append((-(x[:, i] @ x[:, j] / den if den > 0 else 0.0), j))
        for s, j in sorted(sims)[:k]:
            S[i, j] = -s
    return S


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shrink", [0.0, 0.7])
@pytest.mark.parametrize("k", [1, 2, 3, 6, 100])
@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_neighbour_table_equals_the_brute_force_top_k(weighted, shrink, k, chunk):
    train = _toy(weighted)
    x = _dense(train, weighted)
    want = brute_force(x, k, shrink)
    idx, sim = neighbour_table(train, k, shrink, chunk, torch.float64)
    kk = min(k, 6)
    assert idx.shape == sim.shape == (7, kk) and sim.dtype == torch.float64
    got = np.zeros((7, 7))
    got[np.repeat(np.arange(7), kk), idx.reshape(-1).numpy()] = sim.reshape(-1).numpy()
    assert (np.diff(idx.numpy(), axis=1) > 0).all()  # k distinct items per row, no self
    assert not (idx.numpy() == np.arange(7)[:, None]).any()
    # the same items (ties resolved to the lower id) and the same values
    np.testing.assert_array_equal(got != 0, want != 0)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    want_idx = [sorted(j for _, j in sorted((-brute_force(x, 6, shrink)[i, j], j) for j in range(7) if j != i)[:kk])
                for i in range(7)]
    assert idx.tolist() == want_idx


def test_ties_keep_the_lower_item_id():
    idx, sim = neighbour_table(_toy(), 1, 0.0, 2, torch.float64)
    # items 1 and 6 have the same users {0, 1, 4}: sim(1, 6) = 1, each other's nearest
    assert idx[1, 0] == 6 and idx[6, 0] == 1 and sim[1, 0] == sim[6, 0] == pytest.approx(1.0, rel=1e-15)
    # item 2 (users 0, 2, 4) is 2/3-similar to items 0, 1 and 6 alike: the lowest id, 0, wins
    assert idx[2, 0] == 0 and sim[2, 0] == pytest.approx(2 / 3, rel=1e-15)
    # item 5 has no user: zero similarity to every item, so it keeps item 0
    assert idx[5, 0] == 0 and sim[5, 0] == 0.0
    idx2, _ = neighbour_table(_toy(), 2, 0.0, 1, torch.float64)
    assert idx2[2].tolist() == [0, 1]  # of the three tied, the two lowest ids


@pytest.mark.parametrize("weighted", [False, True])
def test_scores_sum_the_neighbour_similarities_over_the_binary_history(weighted):
    train = _toy(weighted)
    cfg = ItemKNNConfig(neighbours=3, shrink=0.5, chunk=2)
    m = ItemKNN(6, 7, cfg).double()
    m.use_interactions(train)
    S = brute_force(_dense(train, weighted), 3, 0.5)
    want = _dense(train, False) @ S
    users = torch.tensor([5, 0, 3, 0, 2])
    got = m.score(users)
    assert got.dtype == torch.float64 and got.shape == (5, 7)
    np.testing.assert_allclose(got.numpy(), want[users.numpy()], rtol=1e-13, atol=1e-15)
    out = torch.full((5, 7), 9.0, dtype=torch.float64)
    assert m.score_into(users, out) is out and torch.equal(out, got)
    assert torch.equal(m.score(torch.tensor([5])), torch.zeros(1, 7, dtype=torch.float64))  # no history


def test_use_interactions_keeps_the_table_of_the_same_matrix_and_rebuilds_for_another(monkeypatch):
    import jnskr.models.itemknn as knn

    weighted, binary = _toy(True), _toy(False)
    m = ItemKNN(6, 7, ItemKNNConfig(neighbours=2)).double()
    with pytest.raises(RuntimeError, match="use_interactions"):
        m.score(torch.tensor([0]))
    builds = []
    build = knn.neighbour_table
    monkeypatch.setattr(knn, "neighbour_table", lambda *a, **k: builds.append(1) or build(*a, **k))
    m.use_interactions(weighted)
    table = m.neighbour_sim.clone()
    m.use_interactions(weighted)  # the same pairs and values (a loaded run): kept
    assert len(builds) == 1 and torch.equal(m.neighbour_sim, table)
    m.use_interactions(binary)  # the same pairs, other values: rebuilt
    assert len(builds) == 2 and not torch.equal(m.neighbour_sim, table)
    fewer = Interactions.from_pairs(*[a[:-3] for a in binary.pairs()], 6, 7)
    m.use_interactions(fewer)  # other pairs: rebuilt
    idx, sim = build(fewer, 2, 0.0, 1024, torch.float64)
    assert torch.equal(m.neighbour_index, idx) and torch.equal(m.neighbour_sim, sim)


def test_memory_parts_count_the_table_and_the_block():
    from jnskr.sizing import Sizes, contributions, culprit

    cfg = tiny_config("itemknn", 1)
    parts = {k: b for k, _, b in ItemKNN.memory_parts(cfg, Sizes(1000, 5000))}
    k = cfg.itemknn.neighbours
    assert parts["itemknn.neighbours"] == 5000 * k * (2 * 12 + 40) + 8 * 5001
    assert parts["itemknn.chunk"] == 1024 * (1000 * 4 + 5000 * 13)
    assert {"itemknn.neighbours", "itemknn.chunk"} <= {k for k, _, _ in contributions(cfg, Sizes(1000, 5000))}
    from jnskr.config import _set_dotted, config_to_dict, validate_config

    d = config_to_dict(cfg)
    _set_dotted(d, "itemknn.chunk", 500_000)
    assert culprit(validate_config(d), Sizes(1000, 500_000))[0] == "itemknn.chunk"


class TestItemKNN(ModelContract):
    model_name = "itemknn"
    trainable = False
    folds_in = False
    has_vectors = False
    has_similarity = True


def test_similar_items_are_the_neighbour_table_in_order():
    """`similar` was embedding-only (NotSupported here); item-KNN answers with its own neighbours."""
    from jnskr import Recommender

    rec = Recommender(tiny_config("itemknn", 1)).fit(synthetic_dataset())
    m = rec.model
    v = 3
    items = rec.item_ids
    ids, sims = rec.similar(items[v], k=5)
    order = torch.argsort(m.neighbour_sim[v], descending=True, stable=True)[:5]
    assert ids.tolist() == [items[j] for j in m.neighbour_index[v][order].tolist()]
    np.testing.assert_allclose(sims, m.neighbour_sim[v][order].numpy(), rtol=1e-6)


def test_itemknn_beats_popularity_on_the_clustered_fixture():
    ds = synthetic_dataset()
    knn = Recommender(tiny_config("itemknn", 1)).fit(ds)
    pop = Recommender(tiny_config("popularity", 1)).fit(ds)
    assert knn.trainer is None
    assert knn.metrics["test"]["recall@10"] > pop.metrics["test"]["recall@10"] + 0.1


def test_a_confidence_weighted_run_loads_and_scores_identically(tmp_path):
    ds = synthetic_dataset()
    rng = np.random.default_rng(3)
    ds.train = dataclasses.replace(ds.train, values=rng.uniform(0.5, 5.0, ds.train.nnz))
    run = tmp_path / "run"
    rec = Recommender(tiny_config("itemknn", 1)).fit(ds, run_dir=run)
    plain = Recommender(tiny_config("itemknn", 1)).fit(synthetic_dataset())
    assert not torch.equal(rec.model.neighbour_sim, plain.model.neighbour_sim)  # the values count
    loaded = Recommender.load(run)
    users = [f"u{u}" for u in range(60)]
    assert np.array_equal(loaded.score(users), rec.score(users))
    assert torch.equal(loaded.model.neighbour_sim, rec.model.neighbour_sim)
    assert np.array_equal(loaded._run.train_seen.values, ds.train.values)  # the run saved the confidences


def test_cli_train_evaluate_recommend_on_the_kgat_fixture(tmp_path, capsys):
    from jnskr.cli.main import run

    out = tmp_path / "knn"
    args = ["train", "--data", str(DATA / "kgat_tiny"), "--format", "kgat", "--model", "itemknn",
            "--set", "itemknn.neighbours=5", "--set", "itemknn.shrink=1", "--device", "cpu", "--out", str(out)]
    assert run(args) == 0
    assert "Recall" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "itemknn" and 0.0 <= metrics["test"]["recall@20"] <= 1.0
    assert run(["evaluate", str(out), "--data", str(DATA / "kgat_tiny"), "--format", "kgat"]) == 0
    assert f"{metrics['test']['recall@20']:.4f}" in capsys.readouterr().out
    assert run(["recommend", str(out), "--user", "alice", "--k", "3"]) == 0
    assert "top 3 for user alice" in capsys.readouterr().out
    # alice (train: items 0, 1, 2; test: item 3) ranks item 3 first: its only user, bob, shares
    # item 2 with her (sim(2, 3) = 1 / (√2 + 1)); items 4 and 5 have no neighbour in her history
    ids, scores = Recommender.load(out).recommend("alice", k=3)
    assert ids[0] == "A3"
    assert scores[0] == pytest.approx(1 / (np.sqrt(2) + 1), rel=1e-6) and scores[1] == 0.0
    assert metrics["test"]["recall@10"] == 1.0  # 6 items: every test item is in the top 10
