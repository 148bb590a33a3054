"""Top-K ranking metrics as pure tensor functions (docs/spec.md §6).

The pipeline is: scores -> `topk_hits` (a bool hit array over the top `k_max` ranks) ->
`per_user_metrics` (one value per user and metric) or `metric_sums` (sums over users plus the
user count).  Averages are only ever formed at the very end, from sums and counts, so batching
and all-reduce across processes cannot change a result.

Notation (docs/spec.md §6): r_k = 1 when the k-th ranked candidate is a test item, H_u = number of hits
in the top `k_max` (always the full list, whatever cutoffs are reported), T_u = the test set.

* recall@K    = sum_{k<=K} r_k / |T_u|
* ndcg@K      = DCG@K / IDCG(min(K, |T_u|))      standard NDCG (use this one)
* ndcg_kgat@K = DCG@K / IDCG(min(K, H_u))        KGAT/JNSKR code's NDCG; 0 when H_u = 0
* precision@K = sum_{k<=K} r_k / K
* hit@K       = 1[sum_{k<=K} r_k > 0]

with DCG@K = sum_{k<=K} r_k / log2(k + 1) and IDCG(m) = sum_{k=1..m} 1 / log2(k + 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from jnskr.ops import topk_masked

METRIC_NAMES: tuple[str, ...] = ("recall", "ndcg", "ndcg_kgat", "precision", "hit")
"""The metric families, in the order their keys appear in every result dict."""


def metric_keys(ks: Sequence[int]) -> list[str]:
    """The result keys for cutoffs `ks`: ``["recall@10", "recall@20", ..., "hit@40"]``."""
    return [f"{name}@{k}" for name in METRIC_NAMES for k in ks]


def _check_ks(ks: Sequence[int], k_max: int) -> list[int]:
    ks = [int(k) for k in ks]
    if not ks:
        raise ValueError("ks must contain at least one cutoff")
    for k in ks:
        if k < 1 or k > k_max:
            raise ValueError(f"cutoff {k} is outside 1..k_max={k_max}")
    return ks


def _to_dense_mask(mask: torch.Tensor, like: torch.Tensor, name: str) -> torch.Tensor:
    """`mask` as a dense bool tensor on the device of `like`, checked to have its shape."""
    shape = like.shape
    if mask.layout != torch.strided:  # a torch sparse (CSR/COO) matrix
        mask = mask.to_dense()
    mask = mask.to(device=like.device, dtype=torch.bool)
    if mask.shape != shape:
        raise ValueError(f"{name} has shape {tuple(mask.shape)}, expected {tuple(shape)}")
    return mask


def topk_hits(
    scores: torch.Tensor,
    exclude: torch.Tensor | None,
    test_mask: torch.Tensor,
    k_max: int = 100,
    inplace: bool = False,
) -> torch.Tensor:
    """Rank the candidates of each row and mark which of the top `k_max` are test items.

    Args:
        scores: float [n, N], higher is better.
        exclude: bool [n, N] (dense, or a torch sparse CSR/COO matrix), True for items that are
            not candidates (the user's training items); or None.
        test_mask: bool [n, N], True for the user's test items.
        k_max: length of the ranked list.  When fewer than `k_max` items exist (N < k_max), the
            list has min(k_max, N) entries and the result is padded with False.
        inplace: write -inf into `scores` instead of a copy (saves one [n, N] allocation).

    Returns:
        hits: bool [n, k_max]; hits[u, k] is True when the item ranked k+1 for row u is a test
        item and a candidate.  Excluded items, and items scored -inf, never count as hits (this
        matters when a row has fewer than `k_max` candidates, so that -inf items get ranked).
        Ties are broken by `torch.topk`, i.e. arbitrarily (docs/spec.md §6).
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be 2-D [n, N], got shape {tuple(scores.shape)}")
    if k_max < 1:
        raise ValueError(f"k_max must be >= 1, got {k_max}")
    n, n_items = scores.shape
    test_mask = _to_dense_mask(test_mask, scores, "test_mask")
    if exclude is not None:
        exclude = _to_dense_mask(exclude, scores, "exclude")
        scores = scores.masked_fill_(exclude, float("-inf")) if inplace else scores.masked_fill(exclude, float("-inf"))
    k = min(k_max, n_items)
    values, idx = topk_masked(scores, k)  # [n, k]
    hits = test_mask.gather(1, idx) & (values != float("-inf"))  # excluded items are -inf
    if k < k_max:
        hits = torch.nn.functional.pad(hits, (0, k_max - k), value=False)
    return hits


def _discounts(k_max: int, device: torch.device) -> torch.Tensor:
    """float64 [k_max]: 1 / log2(k + 1) for k = 1..k_max."""
    ranks = torch.arange(1, k_max + 1, dtype=torch.float64, device=device)
    return 1.0 / torch.log2(ranks + 1.0)


def per_user_metrics(hits: torch.Tensor, n_test: torch.Tensor, ks: Sequence[int]) -> dict[str, torch.Tensor]:
    """Per-user metric values (for significance tests and sparsity groups).

    Args:
        hits: bool [n, k_max] from `topk_hits`.  It must be the FULL top-`k_max` list: the
            legacy ``ndcg_kgat`` uses H_u = hits.sum(1) over all `k_max` ranks.
        n_test: int [n], |T_u| (the number of distinct test items, candidates or not).
        ks: cutoffs, each in 1..k_max.

    Returns:
        ``{"recall@K": float64 [n], "ndcg@K": ..., "ndcg_kgat@K": ..., "precision@K": ...,
        "hit@K": ...}`` for every K in `ks` (keys in `metric_keys(ks)` order).  Rows with
        n_test == 0 have no defined metrics: their values are NaN (callers skip such users;
        `metric_sums` does).
    """
    if hits.dim() != 2:
        raise ValueError(f"hits must be 2-D [n, k_max], got shape {tuple(hits.shape)}")
    n, k_max = hits.shape
    ks = _check_ks(ks, k_max)
    n_test = n_test.to(device=hits.device)
    if n_test.shape != (n,):
        raise ValueError(f"n_test has shape {tuple(n_test.shape)}, expected ({n},)")
    dev = hits.device
    disc = _discounts(k_max, dev)  # [k_max]
    idcg = torch.cat([disc.new_zeros(1), torch.cumsum(disc, 0)])  # [k_max + 1]; idcg[m] = IDCG(m)
    h = hits.to(torch.float64)  # [n, k_max]
    col = torch.tensor([k - 1 for k in ks], dtype=torch.int64, device=dev)  # [c]
    kk = col + 1  # [c] the cutoffs
    hk = torch.cumsum(h, dim=1)[:, col]  # [n, c] hits in the top K
    dcg = torch.cumsum(h * disc, dim=1)[:, col]  # [n, c] DCG@K
    n_hits_all = hits.sum(dim=1)  # [n] H_u over the FULL k_max list, whatever the Ks
    n_test_i = n_test.to(torch.int64)
    idcg_std = idcg[torch.minimum(n_test_i.clamp(min=0)[:, None], kk)]  # [n, c]
    idcg_leg = idcg[torch.minimum(n_hits_all[:, None], kk)]  # [n, c]; 0 iff H_u = 0
    recall = hk / n_test_i.clamp(min=1)[:, None]
    ndcg = dcg / idcg_std.clamp(min=1e-300)
    ndcg_kgat = dcg / idcg_leg.clamp(min=1e-300)  # dcg = 0 when H_u = 0, so 0 / tiny = 0
    precision = hk / kk
    hit = (hk > 0).to(torch.float64)
    stacked = torch.stack([recall, ndcg, ndcg_kgat, precision, hit])  # [5, n, c]
    stacked = stacked.masked_fill((n_test_i <= 0)[None, :, None], float("nan"))
    return {f"{name}@{k}": stacked[m, :, j] for m, name in enumerate(METRIC_NAMES) for j, k in enumerate(ks)}


def metric_sums(hits: torch.Tensor, n_test: torch.Tensor, ks: Sequence[int]) -> dict[str, torch.Tensor]:
    """Per-metric sums over the users of a batch, and the number of users summed.

    Args: as `per_user_metrics`.  Users with n_test == 0 are skipped (not counted).

    Returns:
        ``{"recall@K": float64 [], ..., "hit@K": float64 [], "n_users": float64 []}``: 0-d
        float64 tensors on the device of `hits`.  Add the dicts of several batches (or
        all-reduce them across processes) and divide each metric by ``n_users`` at the end.
    """
    values = per_user_metrics(hits, n_test, ks)  # NaN rows for n_test == 0
    valid = n_test.to(device=hits.device) > 0
    sums = {key: v.nansum() for key, v in values.items()}  # every value of a valid row is finite
    sums["n_users"] = valid.sum().to(torch.float64)
    return sums
