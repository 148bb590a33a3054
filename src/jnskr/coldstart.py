"""Cold start without retraining: new items from their KG facts, new users from a few items.

**New items.**  An item with KG facts but no interactions still has a knowledge-aware vector:
q_v = e_v + m_v with m_v = Σ α_v(r,t) x_t.  `read_new_items` reads such items from a file of
tab-separated triples ``item_raw_id  relation_name  entity_raw_id`` (one fact a line; blank
lines and ``#`` comments skipped) against the run's relation names and tail entities; the item
vectors are then built by `jnskr.models.jnskr.explain.FactTable` with **e_v = 0** (the item never had a base
embedding: all it knows comes from its neighbours).  Unknown relations or entities, ids that
already name a run item, and malformed lines are `DataError`s naming ``file:line``.

**New users (fold-in).**  With the item vectors fixed, the whole-data loss of one user is a
quadratic in p (docs/spec.md §3.2, the user's row of the CF loss, plus L2):

    L(p) = Σ_{v∈S}[(c⁺ − c⁻_v)(a_vᵀp)² − 2c⁺ a_vᵀp] + Σ_v c⁻_v (a_vᵀp)² + λ‖p‖²/2,   a_v = h ∘ q_v
         = pᵀAp − 2bᵀp (+ const),
    A = (hhᵀ) ∘ (Qᵀ diag(c⁻) Q) + Σ_{v∈S}(c⁺ − c⁻_v) a_v a_vᵀ + (λ/2 + ρ) I,   b = c⁺ Σ_{v∈S} a_v,

so p = A⁻¹b.  (hhᵀ) ∘ (Qᵀ diag(c⁻) Q) is the d×d Gram matrix of training, computed once.

Training sees dropped-out vectors (docs/spec.md §2.4): inverted dropout is unbiased, so the expected
loss adds only a diagonal term, E[(hᵀ(p∘q̃))²] = (hᵀ(p∘q))² + Σ_k h_k² p_k² Var(q̃_k).  The
trained p_u minimise that expected loss, so by default (``dropout_aware=True``) A also gets
diag(h² ∘ [Σ_v c⁻_v σ_v + Σ_{v∈S}(c⁺ − c⁻_v) σ_v]) with σ_v = Var(q̃_v), which each model
states (`Model.dropout_variance`): for JNSKR σ_v = ρ_e/(1−ρ_e)·e_v² + ρ_k/(1−ρ_k)·m_v² (keep
probabilities ``jnskr.keep_prob``), for ENMF and LightGCN ρ/(1−ρ)·q_v² (their dropout is on the
batch side, which enters the product the same way).  On the synthetic test data this lifts the median cosine between
folded-in and trained user vectors from about 0.65 to about 0.9.  The
weights are the run's, as each model states them (`Model.fold_in_terms`): JNSKR uses
c⁺ = ``jnskr.c_pos`` and c⁻_v = c0·f_v^β/Σf^β from the training item counts, λ =
``jnskr.lambda_emb``; ENMF and LightGCN use c⁺ = 1 and c⁻ = ``negative_weight`` (``weighting:
uniform``) or the popularity weights with ``c0``/``beta``.  Cold-start items have c⁻ = 0.  The ridge ρ keeps A
well conditioned when the history is tiny or c0 small: ρ = ``ridge`` × mean(diag Gram)
(relative, so it does not depend on the scale of the embeddings); default `DEFAULT_RIDGE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from jnskr.data.parse import decode_lines, read_bytes
from jnskr.errors import DataError, JnskrError
from jnskr.losses.gram import weighted_gram
from jnskr.training.weights import row_ridge

#: relative ridge ρ / mean(diag Gram) of the fold-in solve
DEFAULT_RIDGE = 1e-2


@dataclass
class NewItems:
    """Cold-start items: raw ids and neighbour lists over the run's relation/tail indices."""

    ids: list[str]
    indptr: np.ndarray  # int64 [n + 1]
    relations: np.ndarray  # int64 [facts]
    tails: np.ndarray  # int64 [facts]
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.indptr, self.relations, self.tails


def parse_new_items(lines: list[str], ids, source: str = "<new items>") -> NewItems:
    """Triples ``item relation entity`` (tab-separated; whitespace when a line has no tab),
    against a run's `jnskr.ids.IdMaps`."""
    rel_index = {n: k for k, n in enumerate(ids.relation_names)}
    tail_index = {e: k for k, e in enumerate(ids.tail_entity_ids)}
    if not rel_index or not tail_index:
        raise JnskrError("new items need a run trained with KG facts (this run has no relations/entities)")
    known_items = set(ids.items())
    order: dict[str, int] = {}
    rows: list[tuple[int, int, int]] = []
    seen: set[tuple[int, int, int]] = set()
    for no, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        f = line.split("\t") if "\t" in line else line.split()
        f = [x.strip() for x in f]
        if len(f) != 3 or not all(f):
            raise DataError(f"expected 3 tab-separated fields (item relation entity), got {len(f)}", source, no)
        item, rel, ent = f
        if item in known_items:
            raise DataError(f"item {item!r} is already an item of the run (new items need new ids)", source, no)
        if rel not in rel_index:
            shown = ", ".join(list(rel_index)[:8]) + (", ..." if len(rel_index) > 8 else "")
            raise DataError(f"unknown relation {rel!r} (the run's relations: {shown})", source, no)
        if ent not in tail_index:
            raise DataError(f"unknown entity {ent!r} (not a KG tail entity of the run)", source, no)
        k = order.setdefault(item, len(order))
        key = (k, rel_index[rel], tail_index[ent])
        if key not in seen:
            seen.add(key)
            rows.append(key)
    if not rows:
        raise DataError("no new-item facts", source)
    a = np.asarray(rows, dtype=np.int64)
    srt = np.argsort(a[:, 0], kind="stable")
    a = a[srt]
    indptr = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(np.bincount(a[:, 0], minlength=len(order)), out=indptr[1:])
    return NewItems(ids=list(order), indptr=indptr, relations=a[:, 1].copy(), tails=a[:, 2].copy(), source=source)


def read_new_items(path: str | Path, ids: dict) -> NewItems:
    """Read a new-items file (see the module docstring) against a run's id maps."""
    path = Path(path)
    return parse_new_items(decode_lines(read_bytes(path)), ids, str(path))


class FoldIn:
    """Solve p = A⁻¹b for users given by item histories (float64, on q's device)."""

    def __init__(self, q: Tensor, h: Tensor, c_pos: float, c_neg: np.ndarray, lam: float,
                 ridge: float = DEFAULT_RIDGE, var: Tensor | None = None, reg: float = 0.0,
                 reg_exponent: float = 0.0):
        """q: [N', d] item vectors; h: [d]; c_neg: [N] (cold-start items beyond N get 0);
        var: optional [N', d] dropout variance of each item vector (see the module docstring);
        reg, reg_exponent: the run's ridge λ(n_u + Σ_v c⁻_v)^ν·‖p‖² (n_u the history's length;
        `jnskr.training.weights.row_ridge`), as training solved the users with it."""
        if ridge < 0:
            raise JnskrError(f"ridge must be >= 0, not {ridge}")
        dev = q.device
        self.a = q.detach().double() * h.detach().double()  # [N', d]  a_v = h ∘ q_v
        cn = np.zeros(len(q))
        cn[: len(c_neg)] = c_neg  # cold-start items: c⁻ = 0
        self.c_neg = torch.as_tensor(cn, dtype=torch.float64, device=dev)
        self.c_pos = float(c_pos)
        self.reg, self.reg_exponent, self.neg_mass = float(reg), float(reg_exponent), float(cn.sum())
        self.gram = weighted_gram(self.a, self.c_neg)  # (hhᵀ)∘(Qᵀ C Q) = Aᵀ C A
        d = self.gram.shape[0]
        self.shift = lam / 2 + ridge * float(torch.diagonal(self.gram).mean())
        self.hvar = None  # [N', d] h² ∘ σ_v
        if var is not None:
            self.hvar = var.detach().double() * h.detach().double() ** 2
            self.gram = self.gram + torch.diag((self.c_neg.unsqueeze(1) * self.hvar).sum(0))
        if self.shift <= 0:
            self.shift = 1e-12
        self.eye = torch.eye(d, dtype=torch.float64, device=dev)

    def user_vectors(self, indptr: Tensor, items: Tensor) -> Tensor:
        """Histories as CSR (indptr [n+1], items [nnz] catalogue indices).  -> p [n, d] float64."""
        dev = self.a.device
        indptr, items = indptr.to(dev).long(), items.to(dev).long()
        n = len(indptr) - 1
        seg = torch.repeat_interleave(torch.arange(n, device=dev), indptr[1:] - indptr[:-1])
        av = self.a[items]  # [nnz, d]
        w = self.c_pos - self.c_neg[items]
        A = (self.gram + self.shift * self.eye).expand(n, -1, -1).clone()
        if self.reg:
            lengths = (indptr[1:] - indptr[:-1]).cpu().numpy()
            ridge = row_ridge(self.reg, self.reg_exponent, lengths, self.neg_mass)
            A.diagonal(dim1=1, dim2=2).add_(torch.as_tensor(ridge, dtype=torch.float64, device=dev).unsqueeze(1))
        A.index_add_(0, seg, w[:, None, None] * av[:, :, None] * av[:, None, :])
        if self.hvar is not None:
            dpos = torch.zeros(n, av.shape[1], dtype=torch.float64, device=dev)
            dpos.index_add_(0, seg, w[:, None] * self.hvar[items])
            A = A + torch.diag_embed(dpos)
        b = torch.zeros(n, av.shape[1], dtype=torch.float64, device=dev).index_add_(0, seg, self.c_pos * av)
        return torch.linalg.solve(A, b)

    def user_vector(self, items: Tensor | list[int]) -> Tensor:
        """One user from a list of catalogue indices.  -> p [d] float64."""
        items = torch.as_tensor(items, dtype=torch.long, device=self.a.device).unique()
        indptr = torch.tensor([0, len(items)], device=self.a.device)
        return self.user_vectors(indptr, items)[0]
