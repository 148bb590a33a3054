"""Metric functions against hand-computed values and a plain-Python reference of docs/spec.md §6."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jnskr.evaluation.metrics import metric_keys, metric_sums, per_user_metrics, topk_hits

LOG2_3 = math.log2(3)  # 1 / log2(3) = 0.63093 is the discount of rank 2


def hits_row(ranks: list[int], k_max: int = 100) -> torch.Tensor:
    """bool [k_max] with True at the given 1-based ranks."""
    h = torch.zeros(k_max, dtype=torch.bool)
    for r in ranks:
        h[r - 1] = True
    return h


def test_spec_worked_example():
    # Spec §6: T_u = {a, b, c}; the only hit in the top 100 is at rank 3.
    hits = hits_row([3])[None]
    m = per_user_metrics(hits, torch.tensor([3]), [10])
    # recall@10 = 1 / |T_u| = 1/3
    assert m["recall@10"].item() == pytest.approx(1 / 3)
    # DCG@10 = 1/log2(3+1) = 0.5; legacy IDCG = IDCG(min(10, H_u=1)) = 1 -> 0.5
    assert m["ndcg_kgat@10"].item() == pytest.approx(0.5)
    # standard IDCG = IDCG(min(10, 3)) = 1 + 0.6309 + 0.5 = 2.1309 -> 0.5 / 2.1309 = 0.2346
    assert m["ndcg@10"].item() == pytest.approx(0.5 / (1 + 1 / LOG2_3 + 0.5))
    assert m["ndcg@10"].item() == pytest.approx(0.2346, abs=5e-5)
    # precision@10 = 1/10; hit@10 = 1
    assert m["precision@10"].item() == pytest.approx(0.1)
    assert m["hit@10"].item() == 1.0


def test_recall_divides_by_test_set_size_not_hits():
    # |T_u| = 4, hits at ranks 1 and 2: recall@10 = 2/4 = 0.5 (not 2/2 = 1).
    m = per_user_metrics(hits_row([1, 2])[None], torch.tensor([4]), [10])
    assert m["recall@10"].item() == pytest.approx(0.5)


def test_single_hit_at_rank_one_has_legacy_ndcg_one_at_every_k():
    # H_u = 1, hit at rank 1: DCG = 1, legacy IDCG = IDCG(1) = 1 for every K.
    # Standard with |T_u| = 2: IDCG = 1 + 1/log2(3) = 1.6309 -> 0.6131 for every K >= 2.
    ks = [1, 5, 10, 20, 40, 100]
    m = per_user_metrics(hits_row([1])[None], torch.tensor([2]), ks)
    for k in ks:
        assert m[f"ndcg_kgat@{k}"].item() == pytest.approx(1.0)
    assert m["ndcg@1"].item() == pytest.approx(1.0)  # IDCG(min(1, 2)) = 1
    for k in ks[1:]:
        assert m[f"ndcg@{k}"].item() == pytest.approx(1 / (1 + 1 / LOG2_3))


def test_legacy_uses_hits_in_full_top_k_max_even_for_small_k():
    # |T_u| = 2.  User A: hits at ranks 1 and 50; user B: hit at rank 1 only.  Ks = [10].
    # DCG@10 = 1 for both.
    # legacy: A has H_u = 2 -> IDCG(min(10, 2)) = 1 + 0.6309 -> 1/1.6309 = 0.6131
    #         B has H_u = 1 -> IDCG(1) = 1 -> 1.0
    # standard: both IDCG(min(10, |T_u| = 2)) = 1.6309 -> 0.6131
    hits = torch.stack([hits_row([1, 50]), hits_row([1])])
    m = per_user_metrics(hits, torch.tensor([2, 2]), [10])
    assert m["ndcg_kgat@10"].tolist() == pytest.approx([1 / (1 + 1 / LOG2_3), 1.0])
    assert m["ndcg@10"].tolist() == pytest.approx([1 / (1 + 1 / LOG2_3)] * 2)
    assert m["recall@10"].tolist() == pytest.approx([0.5, 0.5])  # the rank-50 hit is past K


def test_legacy_ndcg_is_zero_without_hits_and_at_least_standard():
    hits = torch.stack([hits_row([]), hits_row([2, 7, 30])])
    m = per_user_metrics(hits, torch.tensor([3, 5]), [10, 20, 40])
    for k in (10, 20, 40):
        assert m[f"ndcg_kgat@{k}"][0].item() == 0.0
        assert m[f"ndcg@{k}"][0].item() == 0.0
        assert m[f"ndcg_kgat@{k}"][1].item() >= m[f"ndcg@{k}"][1].item()


def test_hand_computed_batch_all_metrics():
    # Row 0: |T| = 2, hits at ranks 2 and 4.  Row 1: |T| = 1, hit at rank 5.  k_max = 5, Ks = [1, 3, 5].
    # discounts: d1 = 1, d2 = 1/log2(3) = 0.63093, d3 = 0.5, d4 = 1/log2(5) = 0.43068, d5 = 1/log2(6) = 0.38685
    d = [1 / math.log2(k + 1) for k in range(1, 6)]
    hits = torch.tensor([[0, 1, 0, 1, 0], [0, 0, 0, 0, 1]], dtype=torch.bool)
    m = per_user_metrics(hits, torch.tensor([2, 1]), [1, 3, 5])
    # @1: no hits anywhere
    assert m["recall@1"].tolist() == [0.0, 0.0]
    assert m["hit@1"].tolist() == [0.0, 0.0]
    # @3: row 0 one hit (rank 2): recall 1/2, precision 1/3, DCG d2;
    #     standard IDCG(min(3, 2)) = d1 + d2; legacy H = 2 -> same IDCG.  Row 1: zero.
    assert m["recall@3"].tolist() == pytest.approx([0.5, 0.0])
    assert m["precision@3"].tolist() == pytest.approx([1 / 3, 0.0])
    assert m["hit@3"].tolist() == [1.0, 0.0]
    assert m["ndcg@3"].tolist() == pytest.approx([d[1] / (d[0] + d[1]), 0.0])
    assert m["ndcg_kgat@3"].tolist() == pytest.approx([d[1] / (d[0] + d[1]), 0.0])
    # @5: row 0: recall 2/2 = 1, precision 2/5, DCG d2 + d4 = 1.06161, IDCG d1 + d2 = 1.63093 -> 0.65093
    #     row 1: recall 1, precision 1/5, DCG d5 = 0.38685, IDCG(1) = 1 (both variants)
    assert m["recall@5"].tolist() == pytest.approx([1.0, 1.0])
    assert m["precision@5"].tolist() == pytest.approx([0.4, 0.2])
    assert m["ndcg@5"].tolist() == pytest.approx([(d[1] + d[3]) / (d[0] + d[1]), d[4]])
    assert m["ndcg@5"][0].item() == pytest.approx(0.65093, abs=1e-5)
    assert m["ndcg_kgat@5"].tolist() == pytest.approx([(d[1] + d[3]) / (d[0] + d[1]), d[4]])

    # metric_sums: the sums of the above (recall@5 = 1 + 1 = 2, precision@5 = 0.4 + 0.2 = 0.6)
    s = metric_sums(hits, torch.tensor([2, 1]), [1, 3, 5])
    assert s["n_users"].item() == 2
    assert s["recall@5"].item() == pytest.approx(2.0)
    assert s["precision@5"].item() == pytest.approx(0.6)
    assert s["recall@5"].dtype == torch.float64
    assert list(k for k in s if k != "n_users") == metric_keys([1, 3, 5])


def test_metric_sums_skips_users_without_test_items():
    hits = torch.stack([hits_row([1]), hits_row([]), hits_row([2])])
    s = metric_sums(hits, torch.tensor([1, 0, 2]), [10])
    assert s["n_users"].item() == 2
    # recall@10: 1/1 + 1/2 = 1.5 (the middle user contributes nothing, not NaN)
    assert s["recall@10"].item() == pytest.approx(1.5)
    m = per_user_metrics(hits, torch.tensor([1, 0, 2]), [10])
    assert math.isnan(m["recall@10"][1].item())


def test_metric_sums_are_additive_over_batches():
    gen = torch.Generator().manual_seed(0)
    hits = torch.rand(50, 100, generator=gen) < 0.05
    n_test = torch.randint(0, 6, (50,), generator=gen)
    whole = metric_sums(hits, n_test, [10, 20, 40])
    parts = [metric_sums(hits[a:b], n_test[a:b], [10, 20, 40]) for a, b in [(0, 7), (7, 30), (30, 50)]]
    for key, v in whole.items():
        assert sum(p[key] for p in parts).item() == pytest.approx(v.item())


def test_cutoff_above_k_max_is_rejected():
    with pytest.raises(ValueError):
        metric_sums(torch.zeros(1, 5, dtype=torch.bool), torch.tensor([1]), [10])


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_topk_hits_excludes_and_ranks():
    # 2 users x 6 items.  User 0: excluded {0, 1} (the two best scores), test {2, 5}.
    # Ranking of the candidates by score: 2 (0.8), 3 (0.7), 4 (0.6), 5 (0.5) -> hits [T, F, F, T].
    scores = torch.tensor([[1.0, 0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    exclude = torch.zeros(2, 6, dtype=torch.bool)
    exclude[0, [0, 1]] = True
    test = torch.zeros(2, 6, dtype=torch.bool)
    test[0, [2, 5]] = True
    test[1, [0]] = True  # user 1: the worst-scored item, rank 6
    before = scores.clone()
    hits = topk_hits(scores, exclude, test, k_max=4)
    assert torch.equal(scores, before)  # not in place by default
    assert hits.tolist() == [[True, False, False, True], [False, False, False, False]]
    # the same through a sparse CSR exclusion
    assert torch.equal(topk_hits(scores, exclude.to_sparse_csr(), test, k_max=4), hits)


def test_topk_hits_pads_when_fewer_items_than_k_max_and_ignores_excluded_test_items():
    # 3 items, k_max = 5: the list has 3 entries, padded with False.  Item 0 is both excluded and a
    # test item: it is ranked last (at -inf) but must not count as a hit.
    scores = torch.tensor([[0.3, 0.2, 0.1]])
    exclude = torch.tensor([[True, False, False]])
    test = torch.tensor([[True, False, True]])
    hits = topk_hits(scores, exclude, test, k_max=5)
    assert hits.shape == (1, 5)
    # ranking: item 1, item 2 (hit), item 0 (excluded) -> [F, T, F, F, F]
    assert hits.tolist() == [[False, True, False, False, False]]


# ----- property test against a plain-Python transcription of docs/spec.md §6 -----------------------------


def reference_metrics(
    scores: np.ndarray, train: list[set[int]], test: list[set[int]], ks: list[int], k_max: int
) -> dict[str, list[float]]:
    """Spec §6 literally, one user at a time (users with empty test sets skipped)."""
    out: dict[str, list[float]] = {key: [] for key in metric_keys(ks)}
    n_items = scores.shape[1]
    for u in range(scores.shape[0]):
        if not test[u]:
            continue
        cands = [v for v in range(n_items) if v not in train[u]]
        ranked = sorted(cands, key=lambda v: -scores[u, v])[:k_max]
        r = [1 if v in test[u] else 0 for v in ranked]
        h_u = sum(r)
        for k in ks:
            hk = sum(r[:k])
            dcg = sum(r[i] / math.log2(i + 2) for i in range(min(k, len(r))))
            idcg_std = sum(1 / math.log2(i + 2) for i in range(min(k, len(test[u]))))
            idcg_leg = sum(1 / math.log2(i + 2) for i in range(min(k, h_u)))
            out[f"recall@{k}"].append(hk / len(test[u]))
            out[f"ndcg@{k}"].append(dcg / idcg_std)
            out[f"ndcg_kgat@{k}"].append(dcg / idcg_leg if h_u > 0 else 0.0)
            out[f"precision@{k}"].append(hk / k)
            out[f"hit@{k}"].append(1.0 if hk > 0 else 0.0)
    return out


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_users=st.integers(1, 8),
    n_items=st.integers(1, 30),
    k_max=st.integers(1, 25),
    p_train=st.floats(0.0, 0.6),
    p_test=st.floats(0.0, 0.5),
)
def test_matches_plain_python_reference(seed, n_users, n_items, k_max, p_train, p_test):
    rng = np.random.default_rng(seed)
    # distinct scores (a random permutation) so the ranking has no ties
    scores = rng.permutation(n_users * n_items).reshape(n_users, n_items).astype(np.float32)
    train_m = rng.random((n_users, n_items)) < p_train
    test_m = rng.random((n_users, n_items)) < p_test  # may overlap train: those can never be hit
    ks = sorted({int(k) for k in rng.integers(1, k_max + 1, size=3)})
    hits = topk_hits(torch.from_numpy(scores), torch.from_numpy(train_m), torch.from_numpy(test_m), k_max)
    n_test = torch.from_numpy(test_m.sum(1))
    got = per_user_metrics(hits, n_test, ks)
    sums = metric_sums(hits, n_test, ks)
    ref = reference_metrics(
        scores,
        [set(np.flatnonzero(r).tolist()) for r in train_m],
        [set(np.flatnonzero(r).tolist()) for r in test_m],
        ks,
        k_max,
    )
    valid = test_m.sum(1) > 0
    assert sums["n_users"].item() == valid.sum()
    for key in metric_keys(ks):
        np.testing.assert_allclose(got[key].numpy()[valid], ref[key], rtol=1e-12, atol=1e-12)
        assert sums[key].item() == pytest.approx(sum(ref[key]), abs=1e-9)


@pytest.mark.parametrize(
    "device",
    [pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")), "cpu"],
)
def test_metrics_on_device(device):
    hits = hits_row([3])[None].to(device)
    m = metric_sums(hits, torch.tensor([3], device=device), [10])
    assert m["ndcg@10"].device.type == device
    assert m["ndcg@10"].item() == pytest.approx(0.5 / (1 + 1 / LOG2_3 + 0.5))
    assert m["ndcg_kgat@10"].item() == pytest.approx(0.5)
