"""The batched evaluator and the sparsity groups, on hand-made and random data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from jnskr.data.dataset import Interactions
from jnskr.evaluation import (
    EvalResult,
    Scorer,
    evaluate,
    evaluate_groups,
    group_metrics,
    metric_keys,
    metric_sums,
    sparsity_groups,
    topk_hits,
)

D = [1 / math.log2(k + 1) for k in range(1, 101)]  # D[k-1] = discount of rank k


class FixedScorer:
    """Scores from a fixed [n_users, n_items] matrix."""

    def __init__(self, scores: torch.Tensor, device: str = "cpu"):
        self.scores = scores.to(device)
        self.device = torch.device(device)
        self.calls: list[int] = []

    def score(self, users: torch.Tensor) -> torch.Tensor:
        self.calls.append(users.numel())
        return self.scores[users]  # LongTensor indexing copies


def inter(rows: list[list[int]], n_items: int) -> Interactions:
    users = [u for u, r in enumerate(rows) for _ in r]
    items = [i for r in rows for i in r]
    return Interactions.from_pairs(np.array(users, dtype=np.int64), np.array(items, dtype=np.int64), len(rows), n_items)


# 5 users x 6 items.  Scores: users 0, 3, 4 descending in the item id, users 1, 2 ascending.
DESC = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
ASC = DESC[::-1]
TOY_SCORES = torch.tensor([DESC, ASC, ASC, DESC, DESC])
TOY_TRAIN = [[0], [1], [4, 5], [], [0, 1, 2, 3, 4]]
TOY_TEST = [[1, 3], [], [0, 5], [2], [5]]
# user 0: candidates 1..5 ranked 1,2,3,4,5 -> hits at ranks 1, 3 (|T| = 2, H = 2)
# user 1: no test item -> skipped
# user 2: candidates ranked 3,2,1,0 -> hit at rank 4; test item 5 is a training item: |T| = 2, H = 1
# user 3: no training item, ranked 0..5 -> hit at rank 3 (|T| = 1)
# user 4: a single candidate (5) -> hit at rank 1 (|T| = 1)
ND0 = (D[0] + D[2]) / (D[0] + D[1])  # user 0 ndcg@3 = ndcg@5 = (1 + 0.5) / 1.63093 = 0.91972
TOY_EXPECTED = {
    "recall@1": (0.5 + 0 + 0 + 1) / 4,  # 0.375
    "recall@3": (1 + 0 + 1 + 1) / 4,  # 0.75
    "recall@5": (1 + 0.5 + 1 + 1) / 4,  # 0.875; user 2's excluded test item still counts in |T|
    "ndcg@1": (1 + 0 + 0 + 1) / 4,
    "ndcg@3": (ND0 + 0 + D[2] + 1) / 4,  # (0.91972 + 0 + 0.5 + 1) / 4 = 0.60493
    # user 2 @5: DCG = D[3] = 0.43068; standard IDCG(min(5, 2)) = 1.63093 -> 0.26407
    "ndcg@5": (ND0 + D[3] / (D[0] + D[1]) + D[2] + 1) / 4,  # 0.67095
    "ndcg_kgat@1": (1 + 0 + 0 + 1) / 4,
    "ndcg_kgat@3": (ND0 + 0 + D[2] + 1) / 4,
    # user 2 @5 legacy: IDCG(min(5, H = 1)) = 1 -> 0.43068
    "ndcg_kgat@5": (ND0 + D[3] + D[2] + 1) / 4,  # 0.71260
    "precision@1": (1 + 0 + 0 + 1) / 4,  # 0.5
    "precision@3": (2 / 3 + 0 + 1 / 3 + 1 / 3) / 4,  # 1/3
    "precision@5": (2 / 5 + 1 / 5 + 1 / 5 + 1 / 5) / 4,  # 0.25 (divides by K, even for user 4)
    "hit@1": (1 + 0 + 0 + 1) / 4,
    "hit@3": (1 + 0 + 1 + 1) / 4,
    "hit@5": 1.0,
}


def toy(device: str = "cpu"):
    return FixedScorer(TOY_SCORES, device), inter(TOY_TEST, 6), inter(TOY_TRAIN, 6)


def test_scorer_protocol():
    assert isinstance(FixedScorer(TOY_SCORES), Scorer)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 1024])
def test_toy_hand_computed(batch_size):
    scorer, test, train = toy()
    r = evaluate(scorer, test, train, ks=(1, 3, 5), batch_size=batch_size)
    assert r.n_users == 4  # user 1 (empty test set) skipped
    assert list(r.metrics) == metric_keys((1, 3, 5))
    for key, value in TOY_EXPECTED.items():
        assert r.metrics[key] == pytest.approx(value, abs=1e-12), key
    assert r["ndcg@5"] == pytest.approx(0.67095, abs=1e-5)
    assert r["ndcg_kgat@5"] == pytest.approx(0.71260, abs=1e-5)
    assert sum(scorer.calls) == 4  # the skipped user is never scored


def test_k_max_above_catalogue_size():
    # 6 items, k_max = 100, K = 10: the list has 6 entries.  User 4: one hit, precision@10 = 1/10.
    scorer, test, train = toy()
    r = evaluate(scorer, test, train, ks=(10,), k_max=100, return_per_user=True)
    assert r.per_user["precision@10"].tolist() == pytest.approx([2 / 10, 1 / 10, 1 / 10, 1 / 10])
    assert r.per_user["recall@10"].tolist() == pytest.approx([1, 0.5, 1, 1])
    assert r.users.tolist() == [0, 2, 3, 4]


def test_per_user_and_to_dict():
    scorer, test, train = toy()
    r = evaluate(scorer, test, train, ks=(1, 3, 5), return_per_user=True)
    assert isinstance(r, EvalResult)
    for key, value in TOY_EXPECTED.items():
        assert r.per_user[key].mean() == pytest.approx(value)
    d = json.loads(json.dumps(r.to_dict(include_per_user=True)))
    assert d["n_users"] == 4 and d["k_max"] == 100 and d["ks"] == [1, 3, 5]
    assert d["users"] == [0, 2, 3, 4]
    assert "per_user" not in r.to_dict()


def test_training_items_never_ranked():
    # Training items get the highest scores and test items the next ones: after excluding the
    # training items every test item is ranked first, so standard NDCG and hit are 1 for everyone
    # and recall@K = min(K, |T|) / |T|.
    rng = np.random.default_rng(1)
    n_users, n_items = 40, 50
    train_m = rng.random((n_users, n_items)) < 0.2
    test_m = (rng.random((n_users, n_items)) < 0.1) & ~train_m
    scores = torch.from_numpy(rng.random((n_users, n_items)).astype(np.float32))
    scores = scores + 10 * torch.from_numpy(train_m) + 5 * torch.from_numpy(test_m)
    train = Interactions.from_pairs(*np.nonzero(train_m), n_users, n_items)
    test = Interactions.from_pairs(*np.nonzero(test_m), n_users, n_items)
    r = evaluate(FixedScorer(scores), test, train, ks=(1, 5, 10), k_max=20, batch_size=7, return_per_user=True)
    n_test = test_m.sum(1)[r.users]
    assert r.n_users == (test_m.sum(1) > 0).sum()
    for k in (1, 5, 10):
        np.testing.assert_allclose(r.per_user[f"ndcg@{k}"], 1.0)
        np.testing.assert_allclose(r.per_user[f"recall@{k}"], np.minimum(k, n_test) / n_test)
    # Without the exclusion the training items take the top ranks.
    r0 = evaluate(FixedScorer(scores), test, None, ks=(1,), k_max=20)
    assert r0["hit@1"] < 1.0


def random_case(seed: int, n_users: int = 37, n_items: int = 29, d: int = 4):
    rng = np.random.default_rng(seed)
    scores = torch.from_numpy(rng.standard_normal((n_users, d)) @ rng.standard_normal((d, n_items))).float()
    train_m = rng.random((n_users, n_items)) < 0.25
    test_m = rng.random((n_users, n_items)) < 0.1  # overlaps train on purpose
    test_m[::5] = False  # some users without test items
    train = Interactions.from_pairs(*np.nonzero(train_m), n_users, n_items)
    test = Interactions.from_pairs(*np.nonzero(test_m), n_users, n_items)
    return scores, train_m, test_m, train, test


@pytest.mark.parametrize("k_max", [10, 29, 100])
def test_matches_dense_mask_path(k_max):
    # The evaluator (index_put exclusion, binary-search hits) agrees with topk_hits on dense masks.
    scores, train_m, test_m, train, test = random_case(3)
    ks = [k for k in (1, 5, 10) if k <= k_max]
    hits = topk_hits(scores, torch.from_numpy(train_m), torch.from_numpy(test_m), k_max)
    sums = metric_sums(hits, torch.from_numpy(test_m.sum(1)), ks)
    r = evaluate(FixedScorer(scores), test, train, ks=ks, k_max=k_max, batch_size=8)
    assert r.n_users == int(sums["n_users"])
    for key in metric_keys(ks):
        assert r.metrics[key] == pytest.approx(sums[key].item() / r.n_users, abs=1e-12)


def test_batch_size_invariance():
    scores, _, _, train, test = random_case(4)
    results = [evaluate(FixedScorer(scores), test, train, batch_size=b, return_per_user=True) for b in (1, 3, 37)]
    for r in results[1:]:
        # per-user values are bit-identical; the float64 sums differ only in summation order
        assert r.metrics == pytest.approx(results[0].metrics, rel=1e-13, abs=0)
        assert r.n_users == results[0].n_users
        for key in r.per_user:
            np.testing.assert_array_equal(r.per_user[key], results[0].per_user[key])


def test_users_subset_and_split_exclusion():
    scores, train_m, _, train, test = random_case(5)
    full = evaluate(FixedScorer(scores), test, train, return_per_user=True)
    sub_users = [0, 1, 2, 3, 30, 36]  # user 0 and 30 have no test items (every 5th user)
    sub = evaluate(FixedScorer(scores), test, train, users=sub_users, return_per_user=True)
    assert sub.users.tolist() == [1, 2, 3, 36]
    rows = np.searchsorted(full.users, sub.users)
    np.testing.assert_array_equal(sub.per_user["recall@20"], full.per_user["recall@20"][rows])
    # the training part split across two Interactions: the union is excluded
    u, i = train.pairs()
    half = len(u) // 2
    a = Interactions.from_pairs(u[:half], i[:half], train.n_users, train.n_items)
    b = Interactions.from_pairs(u[half:], i[half:], train.n_users, train.n_items)
    split = evaluate(FixedScorer(scores), test, [a, b])
    assert split.metrics == pytest.approx(full.metrics, abs=1e-15)


def test_reduce_sees_sums_and_count():
    # A reduce that doubles every sum, as an all-reduce over two identical processes would.
    scorer, test, train = toy()
    seen = {}

    def reduce(d):
        seen.update({k: v.clone() for k, v in d.items()})
        for v in d.values():
            v.mul_(2)

    r = evaluate(scorer, test, train, ks=(1, 3, 5), reduce=reduce)
    assert seen["n_users"].item() == 4
    assert seen["recall@5"].item() == pytest.approx(4 * 0.875)
    assert r.n_users == 8
    assert r.metrics == pytest.approx(TOY_EXPECTED, abs=1e-12)


def test_unsorted_duplicate_test_rows_are_canonicalised():
    scorer, test, train = toy()
    # the same test sets with rows reversed and user 0's item 3 listed twice
    messy = Interactions(
        indptr=np.array([0, 3, 3, 5, 6, 7]), indices=np.array([3, 1, 3, 5, 0, 2, 5]), n_items=6
    )
    r = evaluate(scorer, messy, train, ks=(1, 3, 5))
    assert r.metrics == pytest.approx(TOY_EXPECTED, abs=1e-12)


def test_scorer_returning_a_view_is_not_modified():
    class SliceScorer:
        def __init__(self, s):
            self.s = s

        def score(self, users):
            return self.s[int(users[0]) : int(users[-1]) + 1]  # a view of the stored matrix

    scores, _, _, train, test = random_case(6)
    stored = scores.clone()
    evaluate(SliceScorer(stored), test, train, users=[1, 2, 3, 4], batch_size=4)
    assert torch.equal(stored, scores)


def test_module_scorer_in_eval_mode():
    class Mod(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.modes: list[bool] = []

        def score(self, users):
            self.modes.append(self.training)
            return TOY_SCORES[users]

    m = Mod()
    m.train()
    evaluate(m, inter(TOY_TEST, 6), inter(TOY_TRAIN, 6), ks=(1,))
    assert m.modes and not any(m.modes)
    assert m.training


def test_no_users_gives_nan():
    scorer, test, train = toy()
    r = evaluate(scorer, test, train, users=[1])
    assert r.n_users == 0 and math.isnan(r["recall@20"])


def test_bad_arguments():
    scorer, test, train = toy()
    with pytest.raises(ValueError):
        evaluate(scorer, test, train, ks=(200,))
    with pytest.raises(ValueError):
        evaluate(scorer, test, inter(TOY_TRAIN, 7))


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))],
)
def test_device(device):
    scorer, test, train = toy(device)
    r = evaluate(scorer, test, train, ks=(1, 3, 5), batch_size=2)
    assert r.metrics == pytest.approx(TOY_EXPECTED, abs=1e-12)
    scores, _, _, train2, test2 = random_case(7)
    cpu = evaluate(FixedScorer(scores), test2, train2, device="cpu")
    dev = evaluate(FixedScorer(scores, device), test2, train2, batch_size=5)
    assert dev.metrics == pytest.approx(cpu.metrics, abs=1e-12)


# ----- sparsity groups -------------------------------------------------------------------------


def test_sparsity_groups_hand_computed():
    # #train + #test per user: u0 = 0 + 1, u1 = 0 + 1, u2 = 1 + 1, u3 = 2 + 1, u4 = 4 + 1, u5 = 7 + 1,
    # u6 = 4 + 0 (no test item: not grouped).
    # Test users' total = 1 + 1 + 2 + 3 + 5 + 8 = 20, 4 groups -> threshold 5.
    # distinct counts 1 (mass 2), 2 (2), 3 (3): 2 + 2 + 3 = 7 >= 5 -> group 0 = counts 1..3
    # 5 (mass 5) >= 5 -> group 1; 8 is left -> group 2.  Only 3 groups.
    train = inter([[], [], [0], [0, 1], [0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3]], 10)
    test = inter([[1], [1], [1], [2], [5], [9], []], 10)
    g = sparsity_groups(train, test, n_groups=4)
    assert g.users.tolist() == [0, 1, 2, 3, 4, 5]
    assert g.n_interactions.tolist() == [1, 1, 2, 3, 5, 8]
    assert g.group.tolist() == [0, 0, 0, 0, 1, 2]
    assert g.edges == [(1, 3), (5, 5), (8, 8)]
    assert g.group_interactions.tolist() == [7, 5, 8]
    assert g.group_sizes.tolist() == [4, 1, 1]
    assert len(g.describe()) == 3


def test_sparsity_groups_roughly_equal_on_random_data():
    rng = np.random.default_rng(0)
    n_users, n_items = 400, 300
    counts = rng.geometric(0.05, n_users)
    u = np.repeat(np.arange(n_users), counts)
    i = rng.integers(0, n_items, len(u))
    test_sel = rng.random(len(u)) < 0.2
    train = Interactions.from_pairs(u[~test_sel], i[~test_sel], n_users, n_items)
    test = Interactions.from_pairs(u[test_sel], i[test_sel], n_users, n_items)
    g = sparsity_groups(train, test)
    assert g.n_groups == 4
    assert np.all(np.diff(g.group[np.argsort(g.n_interactions, kind="stable")]) >= 0)  # monotone in sparsity
    total = g.group_interactions.sum()
    assert total == g.n_interactions.sum()
    assert np.all(g.group_interactions[:3] >= total / 4)  # closed groups reach a quarter
    # group edges do not overlap
    for (lo0, hi0), (lo1, hi1) in zip(g.edges, g.edges[1:]):
        assert hi0 < lo1


def test_group_metrics_average_per_group():
    scorer, test, train = toy()
    result, groups, by_group = evaluate_groups(scorer, train, test, n_groups=2, ks=(1, 3, 5))
    assert result.metrics == pytest.approx(TOY_EXPECTED, abs=1e-12)
    # interactions: u0 = 1 + 2 = 3, u2 = 2 + 2 = 4, u3 = 0 + 1 = 1, u4 = 5 + 1 = 6; total 14, threshold 7
    # counts 1 (1), 3 (3), 4 (4): 1 + 3 + 4 = 8 >= 7 -> group 0 = {u3, u0, u2}; group 1 = {u4}
    assert groups.edges == [(1, 4), (6, 6)]
    assert by_group[0]["n_users"] == 3 and by_group[1]["n_users"] == 1
    # group 0 recall@5 = (u0 1 + u2 0.5 + u3 1) / 3; group 1 (u4) = 1
    assert by_group[0]["metrics"]["recall@5"] == pytest.approx(2.5 / 3)
    assert by_group[1]["metrics"]["recall@5"] == pytest.approx(1.0)
    assert by_group[1]["interactions"] == (6, 6) and by_group[1]["n_interactions"] == 6
    # the size-weighted mean of group means is the overall mean
    for key in TOY_EXPECTED:
        total = sum(by_group[k]["metrics"][key] * by_group[k]["n_users"] for k in by_group)
        assert total / result.n_users == pytest.approx(result.metrics[key])
    with pytest.raises(ValueError):
        group_metrics(evaluate(scorer, test, train), groups)  # no per-user values
