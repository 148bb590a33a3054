"""Matrix factorisation with a prediction vector, ŷ_uv = hᵀ(p_u ∘ q_v): ENMF (Chen et al., TOIS
2020; chenchongthu/ENMF) trained on the whole-data loss, and BPR-MF trained with sampled pairs.
One model class; the objective differs."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from jnskr.data.config import Strict
from jnskr.models.base import FoldInTerms, Model, ModelData, WholeDataCF, register, trunc_normal_
from jnskr.models.mf.objective import BPRObjective, CFObjective
from jnskr.models.mf.sweeps import MFSweeps
from jnskr.sizing import embedding_part
from jnskr.training.weights import cf_negative_weights, scalar_positive_weight


class ENMFConfig(WholeDataCF):
    """ENMF's whole-data loss; with ``h: fixed``, ``keep_prob: 1``, ``lambda_emb: 0``, uniform
    weighting, ``alpha`` and ``reg`` it is implicit's ALS / Hu et al.'s WRMF / Rendle et al.'s
    iALS (docs/solver.md, "The iALS point")."""

    embed_dim: int = Field(64, ge=1)
    negative_weight: float = Field(0.1, ge=0.0)
    weighting: Literal["uniform", "popularity"] = "uniform"
    c0: float = Field(300.0, ge=0.0)  # total negative weight under `popularity`
    beta: float = Field(0.5, ge=0.0, le=10.0)
    keep_prob: float = Field(0.7, gt=0.0, le=1.0)
    lambda_emb: float = Field(0.0, ge=0.0)
    init_std: float = Field(0.01, ge=1e-6, le=100.0)
    lr: float | None = Field(None, gt=0.0)  # ENMF's own learning rate (null: train.lr)
    h: Literal["learned", "fixed"] = "learned"  # fixed: h = 1, never moved (ŷ = pᵀq, as ALS)


class BPRConfig(Strict):
    """BPR-MF (sampled): one uniformly sampled negative item per training pair."""

    embed_dim: int = Field(64, ge=1)
    reg: float = Field(1e-4, ge=0.0)  # ½·reg·(‖p_u‖² + ‖q_i‖² + ‖q_j‖²) per sampled triple
    init_std: float = Field(0.01, ge=1e-6, le=100.0)


class MF(nn.Module):
    """User and item tables and h; the scoring and capabilities shared by ENMF and BPR."""

    def __init__(self, n_users: int, n_items: int, embed_dim: int, init_std: float, seed: int = 2019,
                 h_fixed: bool = False):
        super().__init__()
        self.n_users = n_users
        self.n_items = n_items
        g = torch.Generator().manual_seed(seed)
        self.user_emb = nn.Parameter(trunc_normal_(torch.empty(n_users, embed_dim), init_std, g))
        self.item_emb = nn.Parameter(trunc_normal_(torch.empty(n_items, embed_dim), init_std, g))
        # h fixed (ones, no gradient): ŷ = pᵀq, the parametrisation of ALS
        self.h = nn.Parameter(torch.ones(embed_dim) if h_fixed else torch.full((embed_dim,), 0.01),
                              requires_grad=not h_fixed)

    def encode(self) -> tuple[Tensor, Tensor]:
        return self.user_emb, self.item_emb

    @classmethod
    def memory_parts(cls, cfg, sizes) -> list[tuple[str, object, int]]:
        return [embedding_part(f"{cls.section}.embed_dim", getattr(cfg, cls.section).embed_dim, sizes, cfg.train.solver)]

    def embedding_tables(self) -> list[Tensor]:
        return [self.user_emb, self.item_emb]

    def row_tables(self) -> dict[str, Tensor]:
        return {"user": self.user_emb, "item": self.item_emb}

    def replicated_params(self) -> list[Tensor]:
        return [self.h] if self.h.requires_grad else []

    def embeddings(self) -> list[tuple[str, Tensor, str, str | None]]:
        return [("users", self.user_emb, "user vectors p_u", "users"),
                ("items", self.item_emb, "item vectors q_v (used for scoring)", "items"),
                ("h", self.h, "prediction vector h: score = h . (p_u * q_v)", None)]


@register
class ENMF(MF, Model):
    name = "enmf"
    section = "enmf"
    Config = ENMFConfig
    supports_distributed = True
    has_sweeps = True
    uses_confidence = True

    def __init__(self, n_users: int, n_items: int, cfg: ENMFConfig, seed: int = 2019):
        super().__init__(n_users, n_items, cfg.embed_dim, cfg.init_std, seed, h_fixed=cfg.h == "fixed")
        self.cfg = cfg

    @classmethod
    def build(cls, cfg, data: ModelData) -> "ENMF":
        return cls(data.n_users, data.n_items, cfg.enmf, seed=cfg.seed)

    @classmethod
    def learning_rate(cls, cfg) -> float:
        return cfg.enmf.lr if cfg.enmf.lr is not None else cfg.train.lr

    def objective(self, train, item_kg, seed: int):
        return CFObjective(self, train, self.cfg, seed)

    def block_sweeps(self, train, item_kg, batch_size: int, block_solver: str = "cholesky", cg_steps: int = 3):
        return MFSweeps(self, train, self.cfg, batch_size, block_solver, cg_steps)

    def fold_in_terms(self, item_counts: np.ndarray) -> FoldInTerms:
        c = self.cfg
        counts = np.asarray(item_counts)
        if c.weighting == "uniform":
            c_neg = np.full(len(counts), float(c.negative_weight))
        else:
            c_neg = cf_negative_weights(counts, c.c0, c.beta)
        return FoldInTerms(scalar_positive_weight(1.0, c.alpha), c_neg, float(c.lambda_emb), (c.keep_prob,),
                           reg=float(c.reg), reg_exponent=float(c.reg_exponent))

    def dropout_variance(self, q: Tensor, e: Tensor | None) -> Tensor:
        """ρ/(1−ρ)·q_v² (ENMF's dropout is on the batch side, which enters the product the same way)."""
        keep = self.cfg.keep_prob
        return (1 - keep) / keep * q.detach().double() ** 2


@register
class BPR(MF, Model):
    """BPR-MF with ENMF's parametrisation (ŷ = hᵀ(p ∘ q)).  No fold-in: its sampled loss has no
    closed-form minimiser for a new user."""

    name = "bpr"
    section = "bpr"
    Config = BPRConfig
    supports_distributed = False

    def __init__(self, n_users: int, n_items: int, cfg: BPRConfig, seed: int = 2019):
        super().__init__(n_users, n_items, cfg.embed_dim, cfg.init_std, seed)
        self.cfg = cfg

    @classmethod
    def build(cls, cfg, data: ModelData) -> "BPR":
        return cls(data.n_users, data.n_items, cfg.bpr, seed=cfg.seed)

    def objective(self, train, item_kg, seed: int):
        return BPRObjective(self, train, self.cfg.reg, seed)
