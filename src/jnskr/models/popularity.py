"""Item popularity: every user gets the items ranked by training interaction count."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


class Popularity(nn.Module):
    def __init__(self, item_counts: np.ndarray):
        super().__init__()
        self.n_items = len(item_counts)
        self.register_buffer("counts", torch.as_tensor(np.asarray(item_counts), dtype=torch.float32))

    def prepare_scoring(self) -> None:
        pass

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        """users: [n] -> [n, n_items] (the same row for everyone)."""
        return self.counts.unsqueeze(0).repeat(len(users), 1)

    @property
    def device(self) -> torch.device:
        return self.counts.device
