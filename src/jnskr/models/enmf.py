"""ENMF (Chen et al., TOIS 2020; chenchongthu/ENMF): plain MF with a prediction vector h,
trained on the whole-data loss.  ŷ_uv = hᵀ(p_u ∘ q_v)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from jnskr.config import ENMFConfig
from jnskr.models.jnskr import trunc_normal_


class ENMF(nn.Module):
    def __init__(self, n_users: int, n_items: int, cfg: ENMFConfig, seed: int = 2019):
        super().__init__()
        self.cfg = cfg
        self.n_users = n_users
        self.n_items = n_items
        g = torch.Generator().manual_seed(seed)
        d = cfg.embed_dim
        self.user_emb = nn.Parameter(trunc_normal_(torch.empty(n_users, d), cfg.init_std, g))
        self.item_emb = nn.Parameter(trunc_normal_(torch.empty(n_items, d), cfg.init_std, g))
        self.h = nn.Parameter(torch.full((d,), 0.01))
        from jnskr.models.jnskr import LocalComm

        self.comm = LocalComm()

    def param_by_row_name(self) -> dict[str, Tensor]:
        return {"user": self.user_emb, "item": self.item_emb}

    def replicated_params(self) -> list[Tensor]:
        return [self.h]

    def embedding_tables(self) -> list[Tensor]:
        return [self.user_emb, self.item_emb]

    def users(self, idx: Tensor | None = None) -> Tensor:
        return self.user_emb if idx is None else self.user_emb[idx]

    def item_vectors(self, items: Tensor | None = None) -> Tensor:
        return self.item_emb if items is None else self.item_emb[items]

    def prepare_scoring(self) -> None:
        pass

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        """users: [n] -> [n, n_items]."""
        return (self.user_emb[users] * self.h) @ self.item_emb.T

    @property
    def device(self) -> torch.device:
        return self.item_emb.device
