"""The model contract and the registry.

A model is one `Model` subclass, registered under its name with `@register`.  It owns:

* its config section: a pydantic class `Config`, validated as the YAML section `section`
  (`jnskr.embed_dim`, `enmf.negative_weight`, ...); `jnskr.config.Config` gains one field per
  registered section, so presets, saved runs and `--set` overrides address it by name;
* how it is built from the data (`build`), its training objective (`objective`), its
  learning rate (`learning_rate`);
* its scoring: `encode()` returns the user and item representations (P [M, d], Q [N, d]) that
  the whole-data loss consumes and scoring multiplies (ŷ = hᵀ(p_u ∘ q_v)); a propagated encoder
  (LightGCN) computes them, a table model returns its tables;
* what it can do, as methods that raise `NotSupported` by default: explain a score by KG facts
  (`explainer`), fold in a user from a history (`fold_in_terms`), item vectors for `similar`
  (`item_vectors`), embedding export (`embeddings`), distributed row routing (`row_tables`).

Nothing outside this module branches on a model's name: callers ask the registry (`get`) and
the model's capabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from pydantic import Field

from jnskr.data.config import Strict
from jnskr.errors import JnskrError
from jnskr.interactions import mf_scores
from jnskr.registry import Registry

MODELS: Registry[type["Model"]] = Registry("model")


class NotSupported(JnskrError):
    """The model cannot do what was asked (e.g. explain a score without a KG)."""


def register(cls: type["Model"]) -> type["Model"]:
    """Class decorator: make `cls` available under `cls.name` (`jnskr.registry.Registry`)."""
    return MODELS.register(cls)


def get(name: str) -> type["Model"]:
    """The model class registered under `name` (an unknown name: one line listing the known ones)."""
    return MODELS.get(name)


def sections() -> dict[str, type[Strict]]:
    """{section name: config class} over every registered model."""
    out: dict[str, type[Strict]] = {}
    for cls in MODELS.values():
        for sec, conf in cls.config_sections().items():
            if out.get(sec, conf) is not conf:
                raise ValueError(f"config section {sec!r} claimed by two classes")
            out[sec] = conf
    return out


def trunc_normal_(t: Tensor, std: float, generator: torch.Generator) -> Tensor:
    """TF-style truncated normal: values beyond ±2 std are redrawn."""
    with torch.no_grad():
        t.normal_(0.0, std, generator=generator)
        bad = t.abs() > 2 * std
        while bool(bad.any()):
            t[bad] = torch.empty(int(bad.sum()), dtype=t.dtype).normal_(0.0, std, generator=generator)
            bad = t.abs() > 2 * std
    return t


class WholeDataCF(Strict):
    """Keys every model on the whole-data CF loss (`jnskr.models.mf.objective.CFObjective`) shares:
    the confidence slope and the per-row ridge of docs/solver.md ("The iALS point")."""

    alpha: float | None = Field(None, ge=0.0, le=1e6)  # confidence c⁺ = 1 + α·value (null: c⁺ = value)
    reg: float = Field(0.0, ge=0.0, le=1e9)  # ridge λ Σ_i s_i‖θ_i‖² on every block (users, items, a learned h)
    reg_exponent: float = Field(0.0, ge=0.0, le=2.0)  # ν: s_i = (n_i + c⁻ mass_i)^ν (0: s_i = 1)


@dataclass
class ModelData:
    """What a model is built from: sizes, training item counts and the item-centric KG (for
    models with `uses_kg`, when the dataset has one and `data.use_kg` is on)."""

    n_users: int
    n_items: int
    item_counts: np.ndarray  # int64 [n_items] training interactions per item
    item_kg: Any = None  # jnskr.data.kg.ItemKG | None


@dataclass
class FoldInTerms:
    """The weights of a model's CF loss seen by one new user (`jnskr.coldstart.FoldIn`)."""

    c_pos: float
    c_neg: np.ndarray  # float64 [n_items]
    lam: float  # L2 weight λ (½λ‖p‖²)
    keep: tuple[float, ...] = ()  # keep probabilities of the item-side dropout (see `dropout_variance`)
    reg: float = 0.0  # ridge λ(n_u + Σ_v c⁻_v)^ν·‖p‖² of the user block (`jnskr.training.weights.row_ridge`)
    reg_exponent: float = 0.0  # its ν


class Model(nn.Module):
    """Base class of every model.  Subclasses set `name`, `section`, `Config`."""

    name: ClassVar[str]
    section: ClassVar[str | None] = None  # its YAML section (None: no options)
    Config: ClassVar[type[Strict] | None] = None
    uses_kg: ClassVar[bool] = False  # needs the item-centric KG
    supports_distributed: ClassVar[bool] = False
    has_sweeps: ClassVar[bool] = False  # `block_sweeps` (train.solver: als)
    uses_confidence: ClassVar[bool] = False  # its loss weighs each training pair by c_pos · value (data.weight: confidence)
    has_kg: bool = False  # this instance scores with KG facts (explanations, the service's /explain)
    h: Tensor  # the prediction vector of ŷ = hᵀ(p_u ∘ q_v): set by every model with `encode()` (a parameter)

    @classmethod
    def memory_parts(cls, cfg, sizes) -> list[tuple[str, object, int]]:
        """(config key, its value, bytes) of the allocations `cfg` sizes for data of `sizes`
        (`jnskr.sizing.Sizes`): what `jnskr.sizing.check_memory` adds up and blames ([]: none)."""
        return []

    @classmethod
    def config_sections(cls) -> dict[str, type[Strict]]:
        """The config sections this model reads ({} for none)."""
        return {cls.section: cls.Config} if cls.section else {}

    @classmethod
    def build(cls, cfg, data: ModelData) -> "Model":
        """A fresh model for the run config `cfg` (`jnskr.config.Config`)."""
        raise NotImplementedError

    @classmethod
    def learning_rate(cls, cfg) -> float:
        return cfg.train.lr

    def objective(self, train, item_kg, seed: int):
        """The training objective over `train` (None: nothing to train)."""
        return None

    @classmethod
    def sweeps_supported(cls, cfg) -> str | None:
        """None when `train.solver: als` can train this configuration, else the reason."""
        return None if cls.has_sweeps else f"model {cls.name} has no exact blocks (use adagrad)"

    def block_sweeps(self, train, item_kg, batch_size: int, block_solver: str = "cholesky", cg_steps: int = 3):
        """The exact block solver of `train.solver: als` (`jnskr.models.<family>.sweeps`)."""
        raise NotSupported(f"{self.name} has no exact blocks: train it with train.solver: adagrad")

    def use_interactions(self, train) -> None:
        """Hook for models whose scoring reads the interactions (LightGCN's graph, item-KNN's
        table): the pipeline calls it with all of train before the final scoring, and a loaded run
        with the train interactions it saved; a model whose objective needs them during selection
        calls it from `objective()` with the split it trains on (LightGCN)."""

    # ----------------------------------------------------------------- scoring
    def encode(self) -> tuple[Tensor, Tensor]:
        """(P [M, d], Q [N, d]): user and item representations, ŷ = hᵀ(p_u ∘ q_v)."""
        raise NotSupported(f"{self.name} has no embeddings")

    def prepare_scoring(self) -> None:
        """Cache what repeated `score` calls share (cleared by `train()`)."""

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        """Scores of every item for dense `users` [n] -> a fresh [n, N] tensor (`mf_scores`)."""
        p, q = self.encode()
        return mf_scores(p.index_select(0, users), self.h, q)

    @torch.no_grad()
    def score_into(self, users: Tensor, out: Tensor) -> Tensor:
        """`score(users)` written into `out` [n, N] (a reused buffer).  -> out."""
        p, q = self.encode()
        return mf_scores(p.index_select(0, users), self.h, q, out)

    @torch.no_grad()
    def score_vectors(self, p: Tensor) -> Tensor:
        """Scores of every item for user vectors p [n, d] (folded-in users) -> [n, N]."""
        _, q = self.encode()
        return mf_scores(p.to(q.dtype), self.h, q)

    # ------------------------------------------------------------ capabilities
    def item_vectors(self) -> Tensor:
        """q_v of every item [N, d] (what `similar` compares by cosine)."""
        return self.encode()[1]

    def item_similarity(self, item: int) -> Tensor:
        """Similarity of every item to `item` [N] (-inf: not similar at all), for a model without
        item vectors whose own structure says which items are alike (item-KNN's neighbours)."""
        raise NotSupported(f"similar items need an embedding model: a {self.name} run has no item vectors")

    def user_vectors(self, users: Tensor | None = None) -> Tensor:
        p = self.encode()[0]
        return p if users is None else p.index_select(0, users)

    def explainer(self, extra=None):
        raise NotSupported(f"explanations need a model with KG facts; a {self.name} run has none "
                           "to explain a score with")

    def fold_in_terms(self, item_counts: np.ndarray) -> FoldInTerms:
        raise NotSupported(f"fold-in needs an embedding model, not {self.name}")

    def base_vectors(self) -> Tensor | None:
        """The part of each item vector that training drops out as one block (JNSKR's e_v; None:
        the whole q_v), for the dropout-aware fold-in (`dropout_variance`)."""
        return None

    def dropout_variance(self, q: Tensor, e: Tensor | None) -> Tensor:
        """Var(q̃_v) under training dropout [N', d] (zeros: no dropout)."""
        return torch.zeros_like(q, dtype=torch.float64)

    def embeddings(self) -> list[tuple[str, Tensor, str, str | None]]:
        """Tables to export: (file stem, tensor, what it is, id kind or None)."""
        raise NotSupported(f"a {self.name} run has no embeddings to export")

    def row_tables(self) -> dict[str, Tensor]:
        """Parameter tables read by rows (distributed training routes their row gradients)."""
        raise NotSupported(f"{self.name} does not support distributed training")

    def replicated_params(self) -> list[Tensor]:
        return []

    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")
