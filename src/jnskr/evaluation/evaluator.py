"""Full-ranking evaluation (docs/spec.md §6): score every item, drop the user's training items, top-K.

`evaluate` walks the evaluated users in batches on the scorer's device.  Per batch it builds the
exclusion and test entries from the CSR arrays with vectorised torch ops (no Python loop over
users), ranks with `torch.topk`, turns the top `k_max` into a hit array and adds per-metric sums.
Only sums and a user count cross batch (and, through `reduce`, process) boundaries.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from jnskr.data.dataset import Interactions
from jnskr.evaluation.metrics import metric_keys, metric_sums, per_user_metrics
from jnskr.ops import csr_gather, topk_masked

logger = logging.getLogger("jnskr")

DEFAULT_KS: tuple[int, ...] = (10, 20, 40)
DEFAULT_K_MAX = 100
DEFAULT_BATCH_SIZE = 1024


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores all items for a batch of users.

    ``score(users)`` takes int64 [b] dense user ids (on the scorer's device) and returns float
    [b, n_items] scores, higher is better.  The returned tensor belongs to the caller:
    `evaluate` writes -inf into it in place, so return a fresh tensor (a matmul result, or a
    score matrix indexed with the LongTensor, which copies), never a stored tensor itself.
    An optional ``device`` attribute says where to run; an `torch.nn.Module` scorer is put in
    eval mode for the duration of `evaluate` (no dropout, docs/spec.md §2.5).
    """

    def score(self, users: torch.Tensor) -> torch.Tensor: ...


# A scorer may also offer ``score_into(users, out) -> out``: the same scores written into a
# float [b, n_items] buffer that `evaluate` reuses across batches (the models do).


@dataclass
class EvalResult:
    """The averaged metrics of one evaluation.

    `metrics` maps keys like ``"recall@20"``, ``"ndcg@20"`` (standard), ``"ndcg_kgat@20"``
    (legacy, docs/spec.md §6/B3), ``"precision@20"``, ``"hit@20"`` to the mean over the `n_users`
    evaluated users.  With ``return_per_user=True``, `per_user` holds float64 [n_users] arrays
    under the same keys, row i for dense user id ``users[i]`` (this process's users only).
    """

    metrics: dict[str, float]
    n_users: int
    k_max: int
    ks: tuple[int, ...] = DEFAULT_KS
    per_user: dict[str, np.ndarray] | None = None
    users: np.ndarray | None = None
    seconds: float = 0.0

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]

    def to_dict(self, include_per_user: bool = False) -> dict[str, Any]:
        """A JSON-serialisable dict (per-user arrays as lists only when asked)."""
        d: dict[str, Any] = {
            "metrics": dict(self.metrics),
            "n_users": self.n_users,
            "k_max": self.k_max,
            "ks": list(self.ks),
            "seconds": self.seconds,
        }
        if include_per_user and self.per_user is not None:
            d["users"] = self.users.tolist() if self.users is not None else None
            d["per_user"] = {k: v.tolist() for k, v in self.per_user.items()}
        return d


@dataclass
class _DeviceCSR:
    """An `Interactions` CSR on a device, with indptr padded to `n_users` rows."""

    indptr: torch.Tensor  # int64 [n_users + 1]
    indices: torch.Tensor  # int64 [nnz]

    @classmethod
    def build(cls, inter: Interactions, n_users: int, device: torch.device) -> "_DeviceCSR":
        indptr = np.asarray(inter.indptr, dtype=np.int64)
        if len(indptr) - 1 < n_users:  # users beyond this matrix have empty rows
            indptr = np.concatenate([indptr, np.full(n_users + 1 - len(indptr), indptr[-1], dtype=np.int64)])
        return cls(
            indptr=torch.as_tensor(indptr[: n_users + 1], device=device),
            indices=torch.as_tensor(np.asarray(inter.indices, dtype=np.int64), device=device),
        )

    def batch_entries(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flat (row, col) of the entries of rows `users`, and the per-row counts.

        Args: users: int64 [b] on the device.
        Returns: rows int64 [nnz_b] in 0..b-1, cols int64 [nnz_b], counts int64 [b].
        """
        rows, pos = csr_gather(self.indptr, users)
        counts = self.indptr[users + 1] - self.indptr[users]
        return rows, self.indices[pos], counts


def _resolve_device(scorer: Any, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    dev = getattr(scorer, "device", None)
    if dev is not None:
        return torch.device(dev)
    if isinstance(scorer, torch.nn.Module):
        for p in scorer.parameters():
            return p.device
    return torch.device("cpu")


def _canonical(inter: Interactions) -> Interactions:
    """`inter` with every row sorted and duplicate-free (as `Interactions` promises), rebuilt if not."""
    idx = np.asarray(inter.indices, dtype=np.int64)
    if len(idx) < 2:
        return inter
    row_start = np.zeros(len(idx), dtype=bool)
    row_start[np.asarray(inter.indptr[:-1])[np.diff(inter.indptr) > 0]] = True
    if np.all((np.diff(idx) > 0) | row_start[1:]):
        return inter
    users, items = inter.pairs()
    return Interactions.from_pairs(users, items, inter.n_users, inter.n_items)


def _select_users(test: Interactions, users: Sequence[int] | np.ndarray | torch.Tensor | None) -> np.ndarray:
    """Sorted unique dense ids of the users to evaluate: those with >= 1 test item."""
    has_test = test.user_counts() > 0
    if users is None:
        return np.flatnonzero(has_test).astype(np.int64)
    if isinstance(users, torch.Tensor):
        users = users.detach().cpu().numpy()
    u = np.unique(np.asarray(users, dtype=np.int64))
    if len(u) and (u[0] < 0 or u[-1] >= test.n_users):
        raise ValueError(f"user ids must be in 0..{test.n_users - 1}")
    return u[has_test[u]]


def evaluate(
    scorer: Scorer,
    test: Interactions,
    exclude: Interactions | Sequence[Interactions] | None,
    ks: Sequence[int] = DEFAULT_KS,
    k_max: int = DEFAULT_K_MAX,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: torch.device | str | None = None,
    users: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    reduce: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor] | None] | None = None,
    return_per_user: bool = False,
) -> EvalResult:
    """Full-ranking top-K evaluation of `scorer` on `test` (docs/spec.md §6).

    Args:
        scorer: a `Scorer`.
        test: the held-out interactions; T_u = the distinct items of test.row(u).
        exclude: interactions whose items are not candidates for their user (the training
            items; for validation, the training part).  Several are united.  None: no exclusion.
        ks: reported cutoffs, each <= k_max.
        k_max: length of the ranked list.  The legacy ``ndcg_kgat`` takes H_u from all of it, so
            keep 100 when comparing with the paper.  Capped at n_items on a tiny catalogue.
        batch_size: users per batch (memory ~ batch_size x n_items x 4 bytes for the scores).
        device: where to score and rank; default the scorer's ``device`` attribute, the device
            of its parameters, or CPU.
        users: evaluate only these dense user ids (among those with test items).  Use this to
            shard users across processes.
        reduce: called once on the dict of 0-d float64 sum tensors (metric keys and
            ``"n_users"``) before dividing; e.g. ``lambda d: [dist.all_reduce(t) for t in
            d.values()]`` for torch.distributed.  If it returns a dict, that dict is used,
            otherwise the (in-place reduced) input.
        return_per_user: also return per-user values (this process's users only).

    Returns:
        an `EvalResult`.  Users with no test item are never evaluated.  A test item that is also
        an excluded item still counts in |T_u| but can never be hit.
    """
    t0 = time.perf_counter()
    ks = tuple(int(k) for k in ks)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not ks or any(k < 1 or k > k_max for k in ks):  # checked here, not on the first batch
        raise ValueError(f"every cutoff must be in 1..k_max={k_max}, got {list(ks)}")
    if exclude is None:
        excludes: list[Interactions] = []
    elif isinstance(exclude, Interactions):
        excludes = [exclude]
    else:
        excludes = list(exclude)
    n_items = test.n_items
    for ex in excludes:
        if ex.n_items != n_items:
            raise ValueError(f"exclude has {ex.n_items} items, test has {n_items}")
        if ex.n_users > test.n_users:
            raise ValueError(f"exclude has {ex.n_users} users, test has {test.n_users}")
    dev = _resolve_device(scorer, device)
    test = _canonical(test)  # T_u deduplicated (docs/spec.md §6) and sorted (the hit search needs it)
    eval_users = _select_users(test, users)

    test_csr = _DeviceCSR.build(test, test.n_users, dev)
    ex_csrs = [_DeviceCSR.build(ex, test.n_users, dev) for ex in excludes]
    keys = metric_keys(ks)
    totals = {key: torch.zeros((), dtype=torch.float64, device=dev) for key in keys}
    totals["n_users"] = torch.zeros((), dtype=torch.float64, device=dev)
    per_user_parts: dict[str, list[torch.Tensor]] = {key: [] for key in keys}
    warned_nan = False

    was_training = isinstance(scorer, torch.nn.Module) and scorer.training
    if was_training:
        scorer.eval()
    try:
        with torch.no_grad():
            eval_users_t = torch.as_tensor(eval_users, device=dev)
            score_into = getattr(scorer, "score_into", None)
            buf = None  # one score buffer for every batch: no fresh [b, N] allocation (page faults) each time
            for lo in range(0, len(eval_users), batch_size):
                ub = eval_users_t[lo : lo + batch_size]  # [b]
                if score_into is not None:
                    if buf is None:
                        buf = torch.empty(min(batch_size, len(eval_users)), n_items, device=dev)
                    scores = score_into(ub, buf[: ub.numel()])
                else:
                    scores = scorer.score(ub)
                if scores.shape != (ub.numel(), n_items):
                    raise ValueError(
                        f"scorer returned shape {tuple(scores.shape)}, expected ({ub.numel()}, {n_items})"
                    )
                if score_into is None and scores._is_view():  # stored scores: never write into the original
                    scores = scores.clone()
                scores = scores.detach().to(dev)
                hits, top = _batch_hits(scores, ub, test_csr, ex_csrs, k_max)  # [b, k_max], [b, k]
                n_test = test_csr.indptr[ub + 1] - test_csr.indptr[ub]  # [b]
                if not warned_nan and torch.isnan(top[:, 0]).any():  # topk ranks NaN first
                    logger.warning("evaluate: the scorer returned NaN scores")
                    warned_nan = True
                if return_per_user:
                    values = per_user_metrics(hits, n_test, ks)
                    for key in keys:
                        per_user_parts[key].append(values[key])
                        totals[key] += values[key].sum()  # n_test > 0 for every evaluated user
                    totals["n_users"] += ub.numel()
                else:
                    sums = metric_sums(hits, n_test, ks)
                    for key, v in sums.items():
                        totals[key] += v
    finally:
        if was_training:
            scorer.train()

    if reduce is not None:
        reduced = reduce(totals)
        if isinstance(reduced, dict):
            totals = reduced
    n = int(round(float(totals["n_users"])))
    if n == 0:
        logger.warning("evaluate: no user has a test item; metrics are NaN")
    metrics = {key: (float(totals[key]) / n if n else math.nan) for key in keys}
    result = EvalResult(metrics=metrics, n_users=n, k_max=k_max, ks=ks, seconds=time.perf_counter() - t0)
    if return_per_user:
        result.per_user = {
            key: (torch.cat(parts).cpu().numpy() if parts else np.zeros(0)) for key, parts in per_user_parts.items()
        }
        result.users = eval_users
    logger.debug(
        "evaluate: %d users, %d items, %.2fs (%.0f users/s)",
        n,
        n_items,
        result.seconds,
        len(eval_users) / max(result.seconds, 1e-9),
    )
    return result


def _batch_hits(
    scores: torch.Tensor,
    users: torch.Tensor,
    test_csr: _DeviceCSR,
    ex_csrs: list[_DeviceCSR],
    k_max: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hits bool [b, k_max] and top scores [b, min(k_max, N)] of one batch.

    Writes -inf into `scores` [b, N] in place (the exclusion), then ranks with `torch.topk`.
    """
    b, n_items = scores.shape
    exclude = None
    if ex_csrs:
        parts = [csr.batch_entries(users)[:2] for csr in ex_csrs]
        exclude = (torch.cat([r for r, _ in parts]), torch.cat([c for _, c in parts]))
    k = min(k_max, n_items)
    values, idx = topk_masked(scores, k, exclude)  # [b, k]
    # Test membership of the ranked items without a dense [b, N] mask: the flat keys
    # row * N + item of the batch's test entries are sorted (CSR rows sorted, rows in order),
    # so a binary search per ranked item answers it in O(b * k * log nnz_b).
    rows, cols, _ = test_csr.batch_entries(users)
    test_keys = rows * n_items + cols  # int64 [nnz_b], sorted, nnz_b >= 1
    top_keys = torch.arange(b, device=idx.device)[:, None] * n_items + idx  # [b, k]
    pos = torch.searchsorted(test_keys, top_keys).clamp_(max=test_keys.numel() - 1)
    hits = (test_keys[pos] == top_keys) & (values != float("-inf"))  # excluded items never hit
    if k < k_max:
        hits = torch.nn.functional.pad(hits, (0, k_max - k), value=False)
    return hits, values
