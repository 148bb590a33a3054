"""Item-based KNN (Sarwar et al., WWW 2001), as implicit's `CosineRecommender` and RecBole's
ItemKNN: nothing to train, the model is a sparse item–item neighbour table.

With X [M, N] the training matrix (1 per pair, or the pair's confidence value under
`data.weight: confidence`) and x_i its column for item i,

    sim(i, j) = x_iᵀ x_j / (‖x_i‖ ‖x_j‖ + shrink)          (0 where the denominator is 0; sim(i, i) unused)

each item i keeps its k = min(`neighbours`, N - 1) most similar other items j (ties: the lower
item id first, so the table is deterministic), and a user's score of item j sums the kept
similarities over the user's training items:

    ŷ_uj = Σ_{i ∈ history(u)} S_ij,     S_ij = sim(i, j) if j is one of i's k neighbours, else 0.

The table is built by `use_interactions` in blocks of `chunk` items: one sparse × dense product
Xᵀ X[:, block] gives the [N, chunk] block of dot products, then a masked top-k per item
(`jnskr.ops.topk_masked`) -- O(nnz · chunk) time per block, O((M + N) · chunk) memory, and the
table is [N, k].  Scoring is one sparse product Sᵀ Hᵀ with H the users' binary histories.

The table is saved with the run (persistent buffers) with the key of the matrix it was built from
(`pattern_key`): loading a run gives `use_interactions` the same pairs and values, so the table is
kept rather than built again; any other matrix is recomputed.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

import jnskr.ops  # noqa: F401  (silences torch's one-time sparse warnings before any thread runs)
from jnskr.data.config import Strict
from jnskr.models.base import Model, ModelData, register
from jnskr.ops import csr_gather, topk_masked
from jnskr.sizing import FLOAT


class ItemKNNConfig(Strict):
    neighbours: int = Field(100, ge=1, le=1_000_000)  # k: the most similar items each item keeps (capped at N - 1)
    shrink: float = Field(0.0, ge=0.0, le=1e9)  # sim = dot / (‖x_i‖‖x_j‖ + shrink): damps pairs with little support
    chunk: int = Field(1024, ge=1, le=1_000_000)  # items per similarity block ([N, chunk] at a time)


def item_columns(train, dtype=torch.float32, device=None) -> tuple[Tensor, Tensor]:
    """(Xᵀ sparse CSR [N, M], ‖x_i‖ [N]) of `train`: the item-major matrix with the pairs'
    values (1 where `train.values` is None) and each item column's Euclidean norm."""
    t = train.transpose()  # item x user, values kept
    vals = torch.ones(t.nnz, dtype=torch.float64) if t.values is None else torch.from_numpy(
        np.asarray(t.values, dtype=np.float64))
    rows = torch.from_numpy(np.repeat(np.arange(t.n_users, dtype=np.int64), t.user_counts()))
    norms = torch.zeros(t.n_users, dtype=torch.float64).index_add_(0, rows, vals * vals).sqrt()
    x_t = torch.sparse_csr_tensor(torch.from_numpy(t.indptr.astype(np.int64)), torch.from_numpy(
        t.indices.astype(np.int64)), vals.to(dtype), (t.n_users, train.n_users))
    return x_t.to(device), norms.to(dtype=dtype, device=device)


def block_similarity(x_t: Tensor, norms: Tensor, start: int, stop: int, shrink: float) -> Tensor:
    """sim(i, j) for the items i of [start, stop) against every item j -> [N, stop - start]
    (column r is item start + r)."""
    n_items, n_users = x_t.shape
    crow, col, val = x_t.crow_indices(), x_t.col_indices(), x_t.values()
    lo, hi = int(crow[start]), int(crow[stop])
    block = torch.zeros(n_users, stop - start, dtype=val.dtype, device=val.device)  # X[:, start:stop] dense
    rows = torch.repeat_interleave(torch.arange(stop - start, device=val.device), crow[start + 1: stop + 1] - crow[start:stop])
    block[col[lo:hi], rows] = val[lo:hi]
    sim = x_t @ block  # [N, c] dot products
    del block
    den = torch.outer(norms, norms[start:stop]).add_(shrink)  # ≥ 0
    empty = den == 0  # an item without interactions and no shrink: 0, not 0/0
    return sim.div_(den.clamp_min_(torch.finfo(sim.dtype).tiny)).masked_fill_(empty, 0.0)


def top_neighbours(sim_t: Tensor, k: int, start: int) -> tuple[Tensor, Tensor]:
    """Each row's k largest entries of `sim_t` [c, N] (row r is item start + r; its own column is
    excluded), ties broken by the lower column -> (indices int64 [c, k] ascending, values [c, k])."""
    c = sim_t.shape[0]
    if k == 0:
        return sim_t.new_zeros(c, 0, dtype=torch.int64), sim_t.new_zeros(c, 0)
    r = torch.arange(c, device=sim_t.device)
    vals, _ = topk_masked(sim_t, k, exclude=(r, r + start))  # -inf on the diagonal, in place
    kth = vals[:, -1:]  # the k-th largest value of each row
    above = sim_t > kth
    tied = sim_t == kth
    room = k - above.sum(1, keepdim=True, dtype=torch.int32)  # how many tied entries still fit
    keep = above | (tied & (tied.cumsum(1, dtype=torch.int32) <= room))  # exactly k per row
    idx = keep.nonzero()[:, 1].view(c, k)  # row-major: columns ascending within a row
    return idx, sim_t.gather(1, idx)


def neighbour_table(train, neighbours: int, shrink: float = 0.0, chunk: int = 1024, dtype=torch.float32,
                    device=None) -> tuple[Tensor, Tensor]:
    """The item–item neighbour table of `train`: (indices int64 [N, k], similarities [N, k]),
    k = min(neighbours, N - 1), built `chunk` items at a time."""
    x_t, norms = item_columns(train, dtype, device)
    n = x_t.shape[0]
    k = max(0, min(int(neighbours), n - 1))
    idx = torch.empty(n, k, dtype=torch.int64, device=x_t.device)
    val = torch.empty(n, k, dtype=dtype, device=x_t.device)
    for a in range(0, n, chunk):  # blocks of items, not items: each step is two whole-block ops
        b = min(a + chunk, n)
        sim_t = block_similarity(x_t, norms, a, b, shrink).t()  # [c, N] view
        idx[a:b], val[a:b] = top_neighbours(sim_t, k, a)
        del sim_t
    return idx, val


def pattern_key(train) -> list[int]:
    """(n_users, nnz, crc32 of the CSR pattern, crc32 of the values or 0): which training matrix a
    table was built from."""
    crc = zlib.crc32(np.ascontiguousarray(train.indptr, dtype=np.int64).tobytes())
    crc = zlib.crc32(np.ascontiguousarray(train.indices, dtype=np.int64).tobytes(), crc)
    values = 0 if train.values is None else zlib.crc32(np.ascontiguousarray(train.values, dtype=np.float64).tobytes())
    return [int(train.n_users), int(train.nnz), crc, values]


@register
class ItemKNN(Model):
    name = "itemknn"
    section = "itemknn"
    Config = ItemKNNConfig
    uses_confidence = True  # the similarity uses the pairs' values; scoring sums over the binary history

    def __init__(self, n_users: int, n_items: int, cfg: ItemKNNConfig):
        super().__init__()
        self.cfg = cfg
        self.n_users, self.n_items = n_users, n_items
        k = max(0, min(cfg.neighbours, n_items - 1))
        self.register_buffer("neighbour_index", torch.zeros(n_items, k, dtype=torch.int64))  # [N, k]
        self.register_buffer("neighbour_sim", torch.zeros(n_items, k))  # [N, k] sim(i, index[i, r])
        # (n_users, nnz, crc32 of the pairs, 1 if built from confidence values); zeros: not built
        self.register_buffer("built_from", torch.zeros(4, dtype=torch.int64))
        self.register_buffer("hist_indptr", torch.zeros(n_users + 1, dtype=torch.int64), persistent=False)
        self.register_buffer("hist_indices", torch.zeros(0, dtype=torch.int64), persistent=False)
        self._scoring: Tensor | None = None  # Sᵀ as sparse CSR [N, N], built by `prepare_scoring`

    @classmethod
    def build(cls, cfg, data: ModelData) -> "ItemKNN":
        return cls(data.n_users, data.n_items, cfg.itemknn)

    @classmethod
    def memory_parts(cls, cfg, sizes) -> list[tuple[str, object, int]]:
        c, n, m = cfg.itemknn, sizes.n_items, sizes.n_users
        k = max(0, min(c.neighbours, n - 1))
        rows = min(c.chunk, max(n, 1))
        rows_eval = min(cfg.eval.batch_size, max(m, 1))
        return [
            # the table (index + similarity), the sparse Sᵀ scoring builds from it, and that build's
            # COO staging (source ids, two [2, N·k] index copies)
            ("itemknn.neighbours", c.neighbours, n * k * (2 * (8 + FLOAT) + 40) + 8 * (n + 1)),
            # per block: X[:, block] dense and the [N, block] similarities, then the top-k's
            # masks (five bool) and tied-entry ranks (int32)
            ("itemknn.chunk", c.chunk, rows * (m * FLOAT + n * (FLOAT + 9))),
            # scoring: the users' dense histories and the product, beside evaluation's buffer
            ("eval.batch_size", cfg.eval.batch_size, 2 * rows_eval * n * FLOAT),
        ]

    def use_interactions(self, train) -> None:
        """Build the neighbour table from `train` (kept when it was built from this very matrix: a
        loaded run, whose structure holds the pairs and their values), and take its histories."""
        dev = self.neighbour_sim.device
        self.hist_indptr = torch.from_numpy(np.asarray(train.indptr, dtype=np.int64)).to(dev)
        self.hist_indices = torch.from_numpy(np.asarray(train.indices, dtype=np.int64)).to(dev)
        self._scoring = None
        key = pattern_key(train)
        if self.built_from.tolist() == key:
            return  # the same matrix: the saved table stands (a rebuild would give the same one)
        idx, val = neighbour_table(train, self.cfg.neighbours, self.cfg.shrink, self.cfg.chunk,
                                   self.neighbour_sim.dtype, dev)
        self.neighbour_index, self.neighbour_sim = idx, val
        self.built_from = torch.tensor(key, dtype=torch.int64, device=dev)

    def train(self, mode: bool = True) -> "ItemKNN":
        self._scoring = None
        return super().train(mode)

    @torch.no_grad()
    def prepare_scoring(self) -> None:
        """Sᵀ [N, N] as sparse CSR: row j holds sim(i, j) of every item i that keeps j."""
        idx, val = self.neighbour_index, self.neighbour_sim
        if int(self.built_from[0]) == 0:
            raise RuntimeError("ItemKNN needs its neighbour table: call use_interactions(train) first")
        src = torch.arange(self.n_items, device=idx.device).repeat_interleave(idx.shape[1])
        keep = val.reshape(-1) != 0  # a zero similarity adds nothing
        s_t = torch.sparse_coo_tensor(torch.stack([idx.reshape(-1)[keep], src[keep]]), val.reshape(-1)[keep],
                                      (self.n_items, self.n_items)).coalesce()
        self._scoring = s_t.to_sparse_csr()

    def _scorer(self) -> Tensor:
        s = self._scoring
        if s is None or s.device != self.neighbour_sim.device or s.dtype != self.neighbour_sim.dtype:
            self.prepare_scoring()
        return self._scoring

    @torch.no_grad()
    def item_similarity(self, item: int) -> Tensor:
        """`similar`: sim(item, j) for the item's kept neighbours j, -inf for every other item.  -> [N]."""
        if int(self.built_from[0]) == 0:
            raise RuntimeError("ItemKNN needs its neighbour table: call use_interactions(train) first")
        idx, val = self.neighbour_index[item], self.neighbour_sim[item]
        out = torch.full((self.n_items,), -torch.inf, dtype=val.dtype, device=val.device)
        keep = val != 0  # a zero similarity: nothing in common
        return out.index_put_((idx[keep],), val[keep])

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        """Scores of every item for dense `users` [n] -> a fresh [n, N] tensor."""
        out = torch.empty(len(users), self.n_items, dtype=self.neighbour_sim.dtype, device=self.neighbour_sim.device)
        return self.score_into(users, out)

    @torch.no_grad()
    def score_into(self, users: Tensor, out: Tensor) -> Tensor:
        """ŷ_uj = Σ_{i ∈ history(u)} S_ij for `users` [n], written into `out` [n, N].  -> out."""
        s_t = self._scorer()
        users = users.to(self.hist_indptr.device, torch.int64)
        seg, pos = csr_gather(self.hist_indptr, users)
        hist_t = torch.zeros(self.n_items, len(users), dtype=s_t.dtype, device=s_t.device)  # Hᵀ [N, n]
        hist_t[self.hist_indices.index_select(0, pos), seg] = 1.0
        return out.copy_((s_t @ hist_t).t())
