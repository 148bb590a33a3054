"""JNSKR (docs/spec.md §2): neural MF whose item vector adds an attention-weighted sum of the
item's KG tail vectors, plus DistMult relation/tail tables for the joint KG loss.

q_v = e_v + m_v,   m_v = Σ_{(r,t)∈𝒩(v)} α_v(r,t) x_t,   ŷ_uv = hᵀ(p_u ∘ q_v)

α is a softmax over each item's neighbours of `jnskr.interactions.attention_logits`; items without
neighbours get m_v = 0.  Neighbour lists are ragged (CSR, `jnskr.ops`): no padding, no cap unless
`max_neighbors` is set.  The batch forward of training (`batch_forward`) lives here too; it
uses the fused kernel of `jnskr.models.jnskr.fused` when it applies, an implementation detail behind
the same values and gradients.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import Tensor, nn

from jnskr.data.kg import cap_neighbors
from jnskr.interactions import attention_logits
from jnskr.models.base import FoldInTerms, Model, ModelData, WholeDataCF, register, trunc_normal_
from jnskr.ops import csr_gather, segment_softmax
from jnskr.sizing import attention_part, embedding_part
from jnskr.models.jnskr.fused import attention_and_kg_positive
from jnskr.models.jnskr.objective import BatchForward, JNSKRObjective, KGFacts
from jnskr.models.jnskr.sweeps import JNSKRSweeps
from jnskr.training.weights import cf_negative_weights, scalar_positive_weight


class JNSKRConfig(WholeDataCF):
    """JNSKR's model and loss.  `alpha`, `reg`, `reg_exponent` and `h: fixed` put its CF part at
    the iALS point as for ENMF (docs/solver.md); `reg` regularises users and item bases (per row,
    frequency-scaled), a learned h, and the tails and relations (plain)."""

    embed_dim: int = Field(64, ge=1)
    attention_dim: int | None = Field(None, ge=1)  # default embed_dim // 2
    attention: Literal["code", "paper", "mean"] = "code"
    keep_prob: tuple[float, float] = (0.3, 0.3)
    c0: float = Field(300.0, ge=0.0)
    c1: float = Field(600.0, ge=0.0)
    c_pos: float = Field(1.0, gt=0.0)
    w_pos: float = Field(1.0, gt=0.0)
    beta: float = Field(0.0, ge=0.0, le=10.0)  # popularity exponent (f^β of item frequencies f <= 1)
    kappa: float = Field(1.0, gt=0.0)  # the CF loss weight (the exact user block divides by it)
    mu: float = Field(0.01, ge=0.0)
    lambda_emb: float = Field(1e-2, ge=0.0)
    lambda_att: float = Field(1.0, ge=0.0)
    kg_neg_weight: Literal["deg", "legacy"] = "deg"
    include_pad_rows_in_gram: bool = False
    max_neighbors: int | None = Field(None, ge=1)
    tie_item_tail_embeddings: bool = False
    init_std: float = Field(0.01, ge=1e-6, le=100.0)
    h: Literal["learned", "fixed"] = "learned"  # fixed: h = 1, never moved (ŷ = pᵀq)

    @field_validator("keep_prob")
    @classmethod
    def _probs(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 < p <= 1.0 for p in v):
            raise ValueError("keep probabilities must be in (0, 1]")
        return v


def index_rows(name: str, table: Tensor, idx: Tensor) -> Tensor:
    """Plain row gather (the single-process `rows` of a strategy)."""
    return table.index_select(0, idx)


@register
class JNSKR(Model):
    """Parameters, forward and scoring of JNSKR."""

    name = "jnskr"
    section = "jnskr"
    Config = JNSKRConfig
    uses_kg = True
    supports_distributed = True
    has_sweeps = True
    uses_confidence = True

    @classmethod
    def build(cls, cfg, data: ModelData) -> "JNSKR":
        return cls(data.n_users, data.n_items, data.item_kg, cfg.jnskr, seed=cfg.seed)

    def __init__(self, n_users: int, n_items: int, item_kg, cfg: JNSKRConfig, seed: int = 2019):
        super().__init__()
        self.cfg = cfg
        self.n_users = n_users
        self.n_items = n_items
        d = cfg.embed_dim
        a = cfg.attention_dim or max(1, d // 2)
        pad = 1 if cfg.include_pad_rows_in_gram else 0
        n_tails = item_kg.n_tails if item_kg is not None else 0
        n_rels = item_kg.n_relations if item_kg is not None else 0
        self.n_tails = n_tails
        self.n_relations = n_rels
        g = torch.Generator().manual_seed(seed)
        std = cfg.init_std
        self.user_emb = nn.Parameter(trunc_normal_(torch.empty(n_users + pad, d), std, g))
        self.item_emb = nn.Parameter(trunc_normal_(torch.empty(n_items, d), std, g))
        fixed = cfg.h == "fixed"
        self.h = nn.Parameter(torch.ones(d) if fixed else torch.full((d,), 0.01), requires_grad=not fixed)
        # tail table: with tied embeddings, tails that are items read the item table instead
        tied = torch.zeros(0, dtype=torch.long)
        own = torch.arange(n_tails)
        if item_kg is not None and cfg.tie_item_tail_embeddings:
            is_item = torch.from_numpy(item_kg.tail_entity < n_items)
            tied = is_item
            own = torch.cumsum((~is_item).long(), 0) - 1
        n_own = int((~tied).sum()) if len(tied) else n_tails
        self.tail_emb = nn.Parameter(trunc_normal_(torch.empty(n_own + pad, d), std, g))
        self.rel_emb = nn.Parameter(trunc_normal_(torch.empty(n_rels + pad, d), std, g))
        w_std = math.sqrt(2.0 / (a + d))
        if cfg.attention in ("code", "mean"):  # "mean" keeps (unused) weights: same tables, same init
            self.att_W = nn.Parameter(trunc_normal_(torch.empty(d, a), w_std, g))
        else:
            self.att_W1 = nn.Parameter(trunc_normal_(torch.empty(d, a), w_std, g))
            self.att_W2 = nn.Parameter(trunc_normal_(torch.empty(d, a), w_std, g))
        self.att_b = nn.Parameter(torch.zeros(a))
        self.att_w = nn.Parameter(torch.full((a,), 0.01))
        # attention neighbourhood (possibly capped) as CSR buffers
        if item_kg is not None:
            ip, rel, tail = cap_neighbors(item_kg, cfg.max_neighbors)
            tail_item = item_kg.tail_entity.copy()
        else:
            ip, rel, tail = np.zeros(n_items + 1, dtype=np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
            tail_item = np.zeros(0, np.int64)
        self.register_buffer("nb_indptr", torch.from_numpy(np.asarray(ip, dtype=np.int64)), persistent=False)
        self.register_buffer("nb_rel", torch.from_numpy(np.asarray(rel, dtype=np.int64)), persistent=False)
        self.register_buffer("nb_tail", torch.from_numpy(np.asarray(tail, dtype=np.int64)), persistent=False)
        self.register_buffer("tail_tied", tied, persistent=False)
        self.register_buffer("tail_own", own, persistent=False)
        self.register_buffer("tail_item", torch.from_numpy(np.asarray(tail_item, dtype=np.int64)), persistent=False)
        self._q_cache: Tensor | None = None

    def objective(self, train, item_kg, seed: int):
        return JNSKRObjective(self, train, item_kg, self.cfg, seed)

    @classmethod
    def memory_parts(cls, cfg, sizes) -> list[tuple[str, object, int]]:
        c = cfg.jnskr
        a = c.attention_dim if c.attention_dim is not None else max(c.embed_dim // 2, 1)
        return [embedding_part("jnskr.embed_dim", c.embed_dim, sizes, cfg.train.solver),
                attention_part("jnskr.attention_dim", a, c.embed_dim, sizes)]

    @classmethod
    def sweeps_supported(cls, cfg) -> str | None:
        c = cfg.jnskr
        if c.tie_item_tail_embeddings or c.include_pad_rows_in_gram:
            return ("jnskr.tie_item_tail_embeddings and jnskr.include_pad_rows_in_gram must be false "
                    "(the item bases are then an exact block)")
        return super().sweeps_supported(cfg)

    def block_sweeps(self, train, item_kg, batch_size: int, block_solver: str = "cholesky", cg_steps: int = 3):
        return JNSKRSweeps(self, train, item_kg, self.cfg, batch_size, block_solver, cg_steps)

    # ----------------------------------------------------------------- tables
    @property
    def has_kg(self) -> bool:
        return self.n_tails > 0

    @property
    def tails_tied(self) -> bool:
        return len(self.tail_tied) > 0

    def tails(self, idx: Tensor | None = None, rows=index_rows) -> Tensor:
        """Tail vectors x_t for tail ids `idx` (all real tails when None).  -> [len, d]."""
        if idx is None:  # the whole table (Gram sums): plain indexing, dense gradient
            if not self.tails_tied:
                return self.tail_emb[: self.n_tails]
            idx = torch.arange(self.n_tails, device=self.tail_emb.device)
            rows = lambda name, table, i: table[i]  # noqa: E731
        if not self.tails_tied:
            return rows("tail", self.tail_emb, idx)
        tied = self.tail_tied[idx]
        out = rows("tail", self.tail_emb, self.tail_own[idx].clamp_min(0))
        item_rows = rows("item", self.item_emb, self.tail_item[idx].clamp_max(self.n_items - 1))
        return torch.where(tied.unsqueeze(1), item_rows, out)

    def tail_table_for_gram(self) -> Tensor:
        """Every tail vector that enters XᵀX (the pad row too when configured).  -> [T(+1), d]."""
        if not self.tails_tied:
            return self.tail_emb
        x = self.tails()
        if self.cfg.include_pad_rows_in_gram:
            x = torch.cat([x, self.tail_emb[-1:]], 0)
        return x

    def embedding_tables(self) -> list[Tensor]:
        """Tables under λ_emb (docs/spec.md §3.4)."""
        return [self.user_emb, self.item_emb, self.tail_emb, self.rel_emb]

    def attention_params(self) -> list[Tensor]:
        return list(self.attention_mlp().values())

    def attention_mlp(self) -> dict[str, Tensor]:
        """The attention MLP as `jnskr.interactions.attention_logits` reads it."""
        if self.cfg.attention in ("code", "mean"):
            return {"W": self.att_W, "b": self.att_b, "w": self.att_w}
        return {"W1": self.att_W1, "W2": self.att_W2, "b": self.att_b, "w": self.att_w}

    def users(self, idx: Tensor | None = None) -> Tensor:
        """User vectors (real users only).  -> [len, d]."""
        if idx is None:
            return self.user_emb[: self.n_users]
        return self.user_emb.index_select(0, idx)

    def row_tables(self) -> dict[str, Tensor]:
        return {"user": self.user_emb, "item": self.item_emb, "tail": self.tail_emb, "rel": self.rel_emb}

    def replicated_params(self) -> list[Tensor]:
        """Small parameters whose gradients are summed across ranks."""
        return ([self.h] if self.h.requires_grad else []) + self.attention_params()

    # -------------------------------------------------------------- attention
    def attention_weights(self, seg: Tensor, x: Tensor, z: Tensor, n_items: int) -> Tensor:
        """α of each neighbour from its gathered tail and relation rows x, z [nnz, d].  -> [nnz]."""
        if self.cfg.attention == "mean":  # ablation: uniform weights 1/|N(v)|
            deg = torch.zeros(n_items, dtype=x.dtype, device=x.device).index_add(0, seg, torch.ones_like(seg, dtype=x.dtype))
            return 1.0 / deg.index_select(0, seg)
        return segment_softmax(attention_logits(x, z, self.attention_mlp(), self.cfg.attention), seg, n_items)

    def fact_logits(self, rel: Tensor, tail: Tensor, dtype=torch.float64, chunk: int = 1 << 17) -> Tensor:
        """Attention logits s(r, t) of facts computed in `dtype` (explanations).  -> [nnz]."""
        mlp = {k: v.detach().to(dtype) for k, v in self.attention_mlp().items()}
        out = [attention_logits(self.tails(t).detach().to(dtype), self.rel_emb[r].detach().to(dtype), mlp,
                                self.cfg.attention)
               for r, t in zip(torch.split(rel, chunk), torch.split(tail, chunk))]
        return torch.cat(out) if out else torch.zeros(0, dtype=dtype, device=rel.device)

    def messages(self, items: Tensor, rows=index_rows) -> Tensor:
        """m_v = Σ α_v(r,t) x_t for `items` [B].  -> [B, d] (zeros for items without facts)."""
        d = self.item_emb.shape[1]
        out = torch.zeros(len(items), d, dtype=self.item_emb.dtype, device=self.item_emb.device)
        if not self.has_kg:
            return out
        seg, pos = csr_gather(self.nb_indptr, items)
        x = self.tails(self.nb_tail.index_select(0, pos), rows)
        z = rows("rel", self.rel_emb, self.nb_rel.index_select(0, pos))
        return self.messages_from_rows(seg, x, z, len(items))

    def messages_from_rows(self, seg: Tensor, x: Tensor, z: Tensor, n_items: int) -> Tensor:
        """m_v from already gathered neighbour rows (shared with the KG loss).  -> [n_items, d]."""
        alpha = self.attention_weights(seg, x, z, n_items)
        out = torch.zeros(n_items, x.shape[1], dtype=x.dtype, device=x.device)
        return out.index_add(0, seg, alpha.unsqueeze(1) * x)

    # ----------------------------------------------------------- batch forward
    def batch_forward(self, items: Tensor, epoch: int, masks, strategy, kg: KGFacts | None) -> BatchForward:
        """q̃_B and ẽ_B of an item batch (docs/spec.md §2.4) and, with the KG loss's facts `kg`,
        their tail/relation rows and Gram matrices (and the KG positive term when the fused
        kernel applies: the attention neighbourhood is exactly those facts, "code" form)."""
        out = BatchForward(q=None, e_kg=None)  # type: ignore[arg-type]
        msg = None
        if kg is not None:
            if not self.tails_tied:
                out.tail_gram, out.x = strategy.gram_rows("tail", self.tail_emb, kg.tail)
            else:  # tied tails read the item table: the KG loss builds their Gram
                out.x = self.tails(kg.tail, strategy.rows)
            out.rel_gram, out.z = strategy.gram_rows("rel", self.rel_emb, kg.rel)
        shared = kg is not None and self.cfg.max_neighbors is None
        e = strategy.rows("item", self.item_emb, items) if shared and self.cfg.attention == "code" else None
        if e is not None:
            out.e_kg = self._kg_heads(e, items, epoch, masks)
            mlp = self.attention_mlp()
            msg, out.kg_positive = attention_and_kg_positive(out.x, out.z, out.e_kg, mlp["W"], mlp["b"], mlp["w"],
                                                             kg.seg, kg.ptr, len(items), kg.w_pos, kg.w_neg)
            out.q = self._cf_items(e, msg, items, epoch, masks)
            return out
        if shared:  # attention sees every fact: gather the rows once for both
            msg = self.messages_from_rows(kg.seg, out.x, out.z, len(items))
        e = strategy.rows("item", self.item_emb, items)
        if msg is None and self.has_kg:
            msg = self.messages(items, strategy.rows)
        out.q = self._cf_items(e, msg, items, epoch, masks)
        out.e_kg = self._kg_heads(e, items, epoch, masks)
        return out

    def _cf_items(self, e: Tensor, msg: Tensor | None, items: Tensor, epoch: int, masks) -> Tensor:
        """q̃_B = drop(e_B) + drop(m_B) in train mode, e_B + m_B otherwise.  -> [B, d]."""
        if not self.training:
            return e + msg if msg is not None else e
        q = masks.apply(e, 1.0 - self.cfg.keep_prob[0], epoch, items, stream=0)
        if msg is not None:
            q = q + masks.apply(msg, 1.0 - self.cfg.keep_prob[1], epoch, items, stream=1)
        return q

    def _kg_heads(self, e: Tensor, items: Tensor, epoch: int, masks) -> Tensor:
        """ẽ_B, the KG loss's head vectors (their own dropout mask in train mode).  -> [B, d]."""
        if not self.training:
            return e
        return masks.apply(e, 1.0 - self.cfg.keep_prob[1], epoch, items, stream=2)

    # ---------------------------------------------------------------- scoring
    def item_vectors(self, items: Tensor | None = None, chunk: int = 8192) -> Tensor:
        """q_v = e_v + m_v (no dropout).  -> [len(items) or n_items, d]."""
        if items is None:
            items = torch.arange(self.n_items, device=self.item_emb.device)
        parts = [self.item_emb[it] + self.messages(it) for it in torch.split(items, chunk)]
        return torch.cat(parts, 0) if parts else self.item_emb[:0]

    def train(self, mode: bool = True) -> "JNSKR":
        self._q_cache = None
        return super().train(mode)

    def encode(self) -> tuple[Tensor, Tensor]:
        q = self._q_cache if self._q_cache is not None and not torch.is_grad_enabled() else self.item_vectors()
        return self.users(), q

    @torch.no_grad()
    def prepare_scoring(self) -> None:
        self._q_cache = self.item_vectors()

    # ------------------------------------------------------------ capabilities
    def explainer(self, extra=None):
        from jnskr.models.jnskr.explain import FactTable

        if not self.has_kg:
            return super().explainer(extra)
        return FactTable(self, extra)

    def fold_in_terms(self, item_counts: np.ndarray) -> FoldInTerms:
        c = self.cfg
        return FoldInTerms(scalar_positive_weight(c.c_pos, c.alpha),
                           cf_negative_weights(np.asarray(item_counts), c.c0, c.beta),
                           float(c.lambda_emb), tuple(c.keep_prob), reg=float(c.reg) / c.kappa,
                           reg_exponent=float(c.reg_exponent))  # fold-in solves the CF loss divided by κ

    def dropout_variance(self, q: Tensor, e: Tensor | None) -> Tensor:
        """σ_v = ρ_e/(1−ρ_e)·e_v² + ρ_k/(1−ρ_k)·m_v² (e: base vectors, zeros for cold-start items)."""
        ke, kk = self.cfg.keep_prob
        q, e = q.detach().double(), e.detach().double()
        return (1 - ke) / ke * e**2 + (1 - kk) / kk * (q - e) ** 2

    def base_vectors(self) -> Tensor:
        return self.item_emb

    def embeddings(self) -> list[tuple[str, Tensor, str, str | None]]:
        out = [("users", self.users(), "user vectors p_u", "users"),
               ("items", self.item_vectors(), "item vectors q_v = e_v + m_v (used for scoring)", "items"),
               ("items_base", self.item_emb, "item base vectors e_v", "items")]
        if self.has_kg:
            out += [("entities", self.tails(), "KG tail entity vectors x_t", "entities"),
                    ("relations", self.rel_emb[: self.n_relations], "KG relation vectors z_r", "relations")]
        return out + [("h", self.h, "prediction vector h: score = h . (p_u * q_v)", None)]
