"""Item popularity: every user gets the items ranked by training interaction count."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from jnskr.models.base import Model, ModelData, register


@register
class Popularity(Model):
    name = "popularity"

    def __init__(self, item_counts: np.ndarray):
        super().__init__()
        self.n_items = len(item_counts)
        self.register_buffer("counts", torch.as_tensor(np.asarray(item_counts), dtype=torch.float32))

    @classmethod
    def build(cls, cfg, data: ModelData) -> "Popularity":
        return cls(data.item_counts)

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        """users: [n] -> [n, n_items] (the same row for everyone)."""
        return self.counts.unsqueeze(0).repeat(len(users), 1)

    @torch.no_grad()
    def score_into(self, users: Tensor, out: Tensor) -> Tensor:
        return out.copy_(self.score(users))

    @torch.no_grad()
    def score_vectors(self, p: Tensor) -> Tensor:
        return self.counts.unsqueeze(0).repeat(len(p), 1)
