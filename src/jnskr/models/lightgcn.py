"""LightGCN (He et al., SIGIR 2020) as an encoder, trained with the exact whole-data CF loss
instead of BPR.

Propagation over the normalised user–item graph Â = D_U^-½ A D_I^-½ (A the training
interactions), with no feature transforms and no non-linearity:

    P⁽ᵏ⁺¹⁾ = Â Q⁽ᵏ⁾,   Q⁽ᵏ⁺¹⁾ = Âᵀ P⁽ᵏ⁾,   P = (1/(K+1)) Σ_{k=0..K} P⁽ᵏ⁾,   Q likewise,

with P⁽⁰⁾, Q⁽⁰⁾ the trained tables.  `encode()` returns (P, Q); the whole-data loss of
`jnskr.models.mf.objective.CFObjective` consumes them unchanged (the Gram of the all side, the
batch rows, the positive pairs), and ŷ_uv = p_u · q_v (h is fixed to ones).  K = 0 is ENMF
without h.  Propagation is two sparse products per layer with a hand-written backward (Âᵀ is
stored, so the backward of Â X is Âᵀ G).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

import jnskr.ops  # noqa: F401  (silences torch's one-time sparse warnings before any thread runs)
from jnskr.models.base import FoldInTerms, Model, ModelData, WholeDataCF, register, trunc_normal_
from jnskr.models.mf.objective import CFObjective
from jnskr.sizing import embedding_part
from jnskr.training.weights import cf_negative_weights, scalar_positive_weight


class LightGCNConfig(WholeDataCF):
    embed_dim: int = Field(64, ge=1)
    layers: int = Field(2, ge=0, le=8)  # K propagation layers (0: plain MF)
    negative_weight: float = Field(0.1, ge=0.0)  # uniform weight of an unobserved pair (weighting: uniform)
    weighting: Literal["uniform", "popularity"] = "uniform"
    c0: float = Field(300.0, ge=0.0)  # total negative weight under `popularity`
    beta: float = Field(0.5, ge=0.0, le=10.0)
    keep_prob: float = Field(1.0, gt=0.0, le=1.0)  # dropout on the batch side's final vectors
    lambda_emb: float = Field(0.0, ge=0.0)  # L2 on the layer-0 tables
    init_std: float = Field(0.1, ge=1e-6, le=100.0)
    lr: float | None = Field(None, gt=0.0)  # LightGCN's own learning rate (null: train.lr)


def normalized_adjacency(train, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """(Â [M, N], Âᵀ [N, M]) as sparse CSR, Â_uv = 1/√(d_u d_v) on training pairs."""
    users, items = train.pairs()
    du = np.maximum(train.user_counts(), 1).astype(np.float64)
    di = np.maximum(train.item_counts(), 1).astype(np.float64)
    w = 1.0 / np.sqrt(du[users] * di[items])
    # torch's one-time "sparse CSR is beta" warning is silenced at import (`jnskr.ops`)
    a = torch.sparse_coo_tensor(torch.from_numpy(np.stack([users, items])), torch.from_numpy(w),
                                (train.n_users, train.n_items)).coalesce()
    return a.to(dtype).to_sparse_csr(), a.t().coalesce().to(dtype).to_sparse_csr()


class _Propagate(torch.autograd.Function):
    """Â X with the backward Âᵀ G (Âᵀ given, no transpose at every step)."""

    @staticmethod
    def forward(ctx, a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:
        ctx.a_t = a_t
        return a @ x

    @staticmethod
    def backward(ctx, g: Tensor):
        return None, None, ctx.a_t @ g


def propagate(a: Tensor, a_t: Tensor, users: Tensor, items: Tensor, layers: int) -> tuple[Tensor, Tensor]:
    """Layer-mean LightGCN propagation.  users [M, d], items [N, d] -> (P [M, d], Q [N, d])."""
    p_sum, q_sum, p, q = users, items, users, items
    for _ in range(layers):
        p, q = _Propagate.apply(a, a_t, q), _Propagate.apply(a_t, a, p)
        p_sum, q_sum = p_sum + p, q_sum + q
    return p_sum / (layers + 1), q_sum / (layers + 1)


@register
class LightGCN(Model):
    name = "lightgcn"
    section = "lightgcn"
    Config = LightGCNConfig
    uses_confidence = True  # in the loss; the propagation graph stays unweighted

    def __init__(self, n_users: int, n_items: int, cfg: LightGCNConfig, seed: int = 2019):
        super().__init__()
        self.cfg = cfg
        self.n_users, self.n_items = n_users, n_items
        g = torch.Generator().manual_seed(seed)
        self.user_emb = nn.Parameter(trunc_normal_(torch.empty(n_users, cfg.embed_dim), cfg.init_std, g))
        self.item_emb = nn.Parameter(trunc_normal_(torch.empty(n_items, cfg.embed_dim), cfg.init_std, g))
        self.register_buffer("h", torch.ones(cfg.embed_dim), persistent=False)
        self.graph: tuple[Tensor, Tensor] | None = None  # (Â, Âᵀ), set by `use_interactions`
        self._cache: tuple[Tensor, Tensor] | None = None

    @classmethod
    def build(cls, cfg, data: ModelData) -> "LightGCN":
        return cls(data.n_users, data.n_items, cfg.lightgcn, seed=cfg.seed)

    @classmethod
    def learning_rate(cls, cfg) -> float:
        return cfg.lightgcn.lr if cfg.lightgcn.lr is not None else cfg.train.lr

    @classmethod
    def memory_parts(cls, cfg, sizes) -> list[tuple[str, object, int]]:
        c = cfg.lightgcn  # a propagated encoder keeps every layer's output for backward
        return [embedding_part("lightgcn.embed_dim", c.embed_dim, sizes, cfg.train.solver, layers=c.layers)]

    def use_interactions(self, train) -> None:
        """Propagate over `train`: the interactions trained on, then (for the saved model and the
        test) every training interaction."""
        a, a_t = normalized_adjacency(train, self.user_emb.dtype)
        self.graph = (a.to(self.user_emb.device), a_t.to(self.user_emb.device))
        self._cache = None

    def objective(self, train, item_kg, seed: int):
        self.use_interactions(train)
        return CFObjective(self, train, self.cfg, seed)

    def encode(self) -> tuple[Tensor, Tensor]:
        if self._cache is not None and not torch.is_grad_enabled():
            return self._cache
        if self.graph is None:
            raise RuntimeError("LightGCN needs its graph: call use_interactions(train) first")
        return propagate(*self.graph, self.user_emb, self.item_emb, self.cfg.layers)

    def train(self, mode: bool = True) -> "LightGCN":
        self._cache = None
        return super().train(mode)

    @torch.no_grad()
    def prepare_scoring(self) -> None:
        self._cache = None
        self._cache = self.encode()

    def embedding_tables(self) -> list[Tensor]:
        return [self.user_emb, self.item_emb]

    def fold_in_terms(self, item_counts: np.ndarray) -> FoldInTerms:
        c = self.cfg
        counts = np.asarray(item_counts)
        c_neg = (np.full(len(counts), float(c.negative_weight)) if c.weighting == "uniform"
                 else cf_negative_weights(counts, c.c0, c.beta))
        return FoldInTerms(scalar_positive_weight(1.0, c.alpha), c_neg, float(c.lambda_emb), (c.keep_prob,),
                           reg=float(c.reg), reg_exponent=float(c.reg_exponent))

    def dropout_variance(self, q: Tensor, e: Tensor | None) -> Tensor:
        keep = self.cfg.keep_prob
        return (1 - keep) / keep * q.detach().double() ** 2

    def embeddings(self) -> list[tuple[str, Tensor, str, str | None]]:
        p, q = self.encode()
        return [("users", p, "user vectors p_u after propagation (used for scoring)", "users"),
                ("items", q, "item vectors q_v after propagation (used for scoring)", "items"),
                ("users_base", self.user_emb, "layer-0 user vectors", "users"),
                ("items_base", self.item_emb, "layer-0 item vectors", "items")]
