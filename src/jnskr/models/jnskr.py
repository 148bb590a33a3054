"""The JNSKR model (spec §2): neural MF whose item vector adds an attention-weighted sum of the
item's KG tail vectors, plus DistMult relation/tail tables for the joint KG loss.

q_v = e_v + m_v,   m_v = Σ_{(r,t)∈𝒩(v)} α_v(r,t) x_t,   ŷ_uv = hᵀ(p_u ∘ q_v)

Attention ("code" form, default):  s = w_αᵀ ReLU(Wᵀ(z_r ∘ x_t) + b)
Attention ("paper" form):          s = w_αᵀ ReLU(W₁ᵀx_t + W₂ᵀz_r + b)
α is a masked softmax over each item's neighbours; items without neighbours get m_v = 0.

Neighbour lists are ragged (CSR) and handled with segment operations: no padding, no
[B, K, d] temporaries, and no cap unless `max_neighbors` is set.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from jnskr.config import JNSKRConfig
from jnskr.data.kg import ItemKG, cap_neighbors
from jnskr.losses import gram_with_rows


def trunc_normal_(t: Tensor, std: float, generator: torch.Generator) -> Tensor:
    """TF-style truncated normal: values beyond ±2 std are redrawn."""
    with torch.no_grad():
        t.normal_(0.0, std, generator=generator)
        bad = t.abs() > 2 * std
        while bool(bad.any()):
            t[bad] = torch.empty(int(bad.sum()), dtype=t.dtype).normal_(0.0, std, generator=generator)
            bad = t.abs() > 2 * std
    return t


def csr_gather(indptr: Tensor, rows: Tensor, with_ptr: bool = False):
    """Flatten CSR rows.  indptr: [n+1], rows: [B] -> (segment [nnz] in 0..B-1, position [nnz]),
    plus the segments' own row pointer [B+1] into the flattened list when `with_ptr`."""
    start = indptr.index_select(0, rows)
    counts = indptr.index_select(0, rows + 1) - start
    seg = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), counts)
    ends = torch.cumsum(counts, 0)
    offsets = ends - counts
    pos = torch.arange(int(counts.sum()), device=rows.device) - offsets.index_select(0, seg) + start.index_select(0, seg)
    if with_ptr:
        return seg, pos, torch.cat([ends.new_zeros(1), ends])
    return seg, pos


class LocalComm:
    """Single-process row access; `jnskr.distributed.DistComm` replaces it under torchrun."""

    rank = 0
    world = 1

    def rows(self, name: str, table: Tensor, idx: Tensor) -> Tensor:
        return table.index_select(0, idx)

    def gram_rows(self, name: str, table: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """(tableᵀtable, table[idx]) as one op with one dense gradient."""
        return gram_with_rows(table, idx)

    def batch_gram(self, name: str, local: Tensor) -> Tensor:
        return local

    def h_allpairs(self, h: Tensor) -> Tensor:
        return h


def segment_softmax(scores: Tensor, seg: Tensor, n_seg: int) -> Tensor:
    """Softmax of `scores` [nnz] within segments `seg` [nnz] (numerically safe).  -> [nnz]."""
    smax = torch.full((n_seg,), -math.inf, dtype=scores.dtype, device=scores.device)
    smax = smax.scatter_reduce(0, seg, scores.detach(), reduce="amax", include_self=True)
    e = torch.exp(scores - smax.index_select(0, seg))
    denom = torch.zeros(n_seg, dtype=scores.dtype, device=scores.device).index_add(0, seg, e)
    return e / denom.index_select(0, seg)


class JNSKR(nn.Module):
    """Parameters and scoring of JNSKR.  Losses live in `jnskr.training.objectives`."""

    def __init__(self, n_users: int, n_items: int, item_kg: ItemKG | None, cfg: JNSKRConfig, seed: int = 2019):
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
        self.h = nn.Parameter(torch.full((d,), 0.01))
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
        self.comm = LocalComm()

    # ----------------------------------------------------------------- tables
    @property
    def has_kg(self) -> bool:
        return self.n_tails > 0

    def tails(self, idx: Tensor | None = None) -> Tensor:
        """Tail vectors x_t for tail ids `idx` (all real tails when None).  -> [len, d]."""
        if idx is None:  # the whole table (Gram sums): plain indexing, dense gradient
            if len(self.tail_tied) == 0:
                return self.tail_emb[: self.n_tails]
            idx = torch.arange(self.n_tails, device=self.tail_emb.device)
            rows = lambda name, table, i: table[i]  # noqa: E731
        else:
            rows = self.comm.rows
        if len(self.tail_tied) == 0:
            return rows("tail", self.tail_emb, idx)
        tied = self.tail_tied[idx]
        out = rows("tail", self.tail_emb, self.tail_own[idx].clamp_min(0))
        item_rows = rows("item", self.item_emb, self.tail_item[idx].clamp_max(self.n_items - 1))
        return torch.where(tied.unsqueeze(1), item_rows, out)

    def tail_table_for_gram(self) -> Tensor:
        """Every tail vector that enters XᵀX (the pad row too when configured).  -> [T(+1), d]."""
        if len(self.tail_tied) == 0:
            return self.tail_emb
        x = self.tails()
        if self.cfg.include_pad_rows_in_gram:
            x = torch.cat([x, self.tail_emb[-1:]], 0)
        return x

    def embedding_tables(self) -> list[Tensor]:
        """Tables under λ_emb (spec §3.4)."""
        return [self.user_emb, self.item_emb, self.tail_emb, self.rel_emb]

    def attention_params(self) -> list[Tensor]:
        if self.cfg.attention in ("code", "mean"):
            return [self.att_W, self.att_b, self.att_w]
        return [self.att_W1, self.att_W2, self.att_b, self.att_w]

    def users(self, idx: Tensor | None = None) -> Tensor:
        """User vectors (real users only).  -> [len, d]."""
        if idx is None:
            return self.user_emb[: self.n_users]
        return self.user_emb.index_select(0, idx)

    # -------------------------------------------------------------- attention
    def attention(self, items: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Attention over the neighbours of `items` [B].

        -> (seg [nnz] batch row, rel [nnz], tail [nnz], alpha [nnz]).
        """
        seg, pos = csr_gather(self.nb_indptr, items)
        rel = self.nb_rel.index_select(0, pos)
        tail = self.nb_tail.index_select(0, pos)
        x = self.tails(tail)
        z = self.comm.rows("rel", self.rel_emb, rel)
        return seg, rel, tail, self.attention_weights(seg, x, z, len(items))

    def attention_weights(self, seg: Tensor, x: Tensor, z: Tensor, n_items: int) -> Tensor:
        """α of each neighbour from its gathered tail and relation rows x, z [nnz, d].  -> [nnz]."""
        if self.cfg.attention == "mean":  # ablation: uniform weights 1/|N(v)|
            deg = torch.zeros(n_items, dtype=x.dtype, device=x.device).index_add(0, seg, torch.ones_like(seg, dtype=x.dtype))
            return 1.0 / deg.index_select(0, seg)
        if self.cfg.attention == "code":
            pre = (z * x) @ self.att_W + self.att_b
        else:
            pre = x @ self.att_W1 + z @ self.att_W2 + self.att_b
        s = torch.relu(pre) @ self.att_w
        return segment_softmax(s, seg, n_items)

    def messages(self, items: Tensor) -> Tensor:
        """m_v = Σ α_v(r,t) x_t for `items` [B].  -> [B, d] (zeros for items without facts)."""
        d = self.item_emb.shape[1]
        out = torch.zeros(len(items), d, dtype=self.item_emb.dtype, device=self.item_emb.device)
        if not self.has_kg:
            return out
        seg, pos = csr_gather(self.nb_indptr, items)
        x = self.tails(self.nb_tail.index_select(0, pos))
        z = self.comm.rows("rel", self.rel_emb, self.nb_rel.index_select(0, pos))
        return self.messages_from_rows(seg, x, z, len(items))

    def messages_from_rows(self, seg: Tensor, x: Tensor, z: Tensor, n_items: int) -> Tensor:
        """m_v from already gathered neighbour rows (shared with the KG loss).  -> [n_items, d]."""
        alpha = self.attention_weights(seg, x, z, n_items)
        out = torch.zeros(n_items, x.shape[1], dtype=x.dtype, device=x.device)
        return out.index_add(0, seg, alpha.unsqueeze(1) * x)

    def param_by_row_name(self) -> dict[str, Tensor]:
        return {"user": self.user_emb, "item": self.item_emb, "tail": self.tail_emb, "rel": self.rel_emb}

    def replicated_params(self) -> list[Tensor]:
        """Small parameters whose gradients are summed across ranks."""
        return [self.h, *self.attention_params()]

    def item_vectors(self, items: Tensor | None = None, chunk: int = 8192) -> Tensor:
        """q_v = e_v + m_v (no dropout).  -> [len(items) or n_items, d]."""
        if items is None:
            items = torch.arange(self.n_items, device=self.item_emb.device)
        parts = [self.item_emb[it] + self.messages(it) for it in torch.split(items, chunk)]
        return torch.cat(parts, 0) if parts else self.item_emb[:0]

    # ---------------------------------------------------------------- scoring
    def train(self, mode: bool = True) -> "JNSKR":
        self._q_cache = None
        return super().train(mode)

    @torch.no_grad()
    def prepare_scoring(self) -> None:
        """Cache every q_v for fast repeated `score` calls (cleared by `train()`)."""
        self._q_cache = self.item_vectors()

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        """ŷ for every item.  users: [n] -> [n, n_items]."""
        q = self._q_cache if self._q_cache is not None else self.item_vectors()
        return (self.user_emb[users] * self.h) @ q.T

    @property
    def device(self) -> torch.device:
        return self.item_emb.device
