"""Keyed negative sampling for the sampled baselines (BPR, JNSKR-sampled): draws keyed by
(seed, epoch, id, stream), so a resumed run draws the same negatives."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from jnskr.training.dropout import keyed_uniform


def keyed_index(seed: int, epoch: int, ids: Tensor, n: int, stream: int) -> Tensor:
    """A uniform draw from 0..n-1 per id, keyed by (seed, epoch, id, stream).  ids: [k] -> [k]."""
    u = keyed_uniform(seed, epoch, ids, 1, stream, dtype=torch.float64)[:, 0]
    return (u * n).long().clamp_max(n - 1)


class PositiveLookup:
    """Membership test for (row, col) in a CSR matrix, vectorised (sorted packed keys)."""

    def __init__(self, csr, device):
        rows, cols = csr.pairs()
        self.width = max(csr.n_items, 1)
        self.keys = torch.as_tensor(np.sort(rows * self.width + cols), device=device)

    def contains(self, rows: Tensor, cols: Tensor) -> Tensor:
        k = rows * self.width + cols
        pos = torch.searchsorted(self.keys, k).clamp_max(max(len(self.keys) - 1, 0))
        return self.keys[pos] == k if len(self.keys) else torch.zeros_like(k, dtype=torch.bool)


def sample_negatives(seed, epoch, ids, rows, n, lookup: PositiveLookup | None, stream: int) -> Tensor:
    """One uniformly drawn column per id, redrawn (twice at most) where it is a positive of its row."""
    neg = keyed_index(seed, epoch, ids, n, stream)
    if lookup is not None:
        for extra in (1, 2):
            bad = lookup.contains(rows, neg)
            if not bool(bad.any()):
                break
            neg = torch.where(bad, keyed_index(seed, epoch, ids, n, stream + 10 * extra), neg)
    return neg
