"""`Catalog`: a trained model prepared for queries, in dense indices (the engine behind
`Recommender.recommend`, `similar`, `recommend_for_history`, `explain` and the service).

Everything that does not depend on the query is computed once, lazily: the item vectors q of
the catalogue (the run's items plus any cold-start items), p_u ∘ h of every user, the training
items of each user as device CSR, the fold-in Gram matrix, the float64 fact table of
explanations.  A query is then one matmul and one `jnskr.ops.topk_masked`; batches of users are
vectorised.  Catalogue indices ``< n_items`` are the run's items, ``>= n_items`` cold-start
items in file order.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from jnskr.coldstart import DEFAULT_RIDGE, FoldIn, NewItems
from jnskr.errors import JnskrError
from jnskr.interactions import mf_scores
from jnskr.models.base import NotSupported
from jnskr.ops import csr_gather, topk_masked


class Catalog:
    def __init__(self, model, train_seen, item_counts: np.ndarray, n_items: int, new_items: NewItems | None = None,
                 ridge: float = DEFAULT_RIDGE, dropout_aware: bool = True):
        self.model = model.eval()
        self.device = model.device
        self.n_items = n_items
        self.new_items = new_items if new_items is not None and len(new_items) else None
        self.n_catalog = n_items + (len(self.new_items) if self.new_items else 0)
        self.ridge = ridge
        self.dropout_aware = dropout_aware
        self.seen_indptr = torch.as_tensor(train_seen.indptr, dtype=torch.long, device=self.device)
        self.seen_items = torch.as_tensor(train_seen.indices, dtype=torch.long, device=self.device)
        self._seen_ptr = np.asarray(train_seen.indptr)
        counts = np.zeros(self.n_catalog, dtype=np.float32)
        counts[:n_items] = np.asarray(item_counts, dtype=np.float32)
        self.item_counts = np.asarray(item_counts)
        self.popularity = torch.as_tensor(counts, device=self.device)
        self._facts = None
        self._fold: FoldIn | None = None
        self._qn: Tensor | None = None
        with torch.no_grad():
            try:
                p, q = model.encode()
            except NotSupported:  # a model that only scores (popularity)
                self.q = self.p = self.h = None
                if self.new_items:
                    raise JnskrError("cold-start items need a model with KG facts") from None
                return
            if self.new_items:
                q = torch.cat([q, self.facts().item_vectors()[n_items:].to(q.dtype)])
            self.q = q.detach().contiguous()  # [N', d]
            self.h = model.h.detach()
            self.p = p.detach()  # [M, d]

    @property
    def has_vectors(self) -> bool:
        return self.q is not None

    # -------------------------------------------------------------- scoring
    def scores_users(self, users: Tensor) -> Tensor:
        """Scores of the catalogue for dense users [n] -> [n, N'] (a fresh tensor)."""
        if self.p is None:
            return self.model.score(users)
        return mf_scores(self.p.index_select(0, users), self.h, self.q)

    def scores_vectors(self, p: Tensor) -> Tensor:
        if self.q is None:
            return self.popularity.unsqueeze(0).repeat(len(p), 1)
        return mf_scores(p.to(self.q.dtype), self.h, self.q)

    def candidates_mask(self, items: np.ndarray | None) -> Tensor | None:
        if items is None:
            return None
        m = torch.zeros(self.n_catalog, dtype=torch.bool, device=self.device)
        m[torch.as_tensor(items, dtype=torch.long, device=self.device)] = True
        return m

    @torch.no_grad()
    def recommend_users(self, users, k: int = 20, exclude_seen: bool = True, candidates: Tensor | None = None,
                        batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Top-k catalogue indices and scores ([n, k'], k' = min(k, N'); -1 / -inf where a row
        has fewer candidates) for dense users, in batches on the model's device."""
        users = torch.as_tensor(np.asarray(users), dtype=torch.long, device=self.device)
        parts = []
        for b in torch.split(users, max(1, batch_size)):
            ex = None
            if exclude_seen:
                seg, pos = csr_gather(self.seen_indptr, b)
                ex = (seg, self.seen_items.index_select(0, pos))
            parts.append(_finish(*topk_masked(self.scores_users(b), k, ex, candidates)))
        if not parts:
            kk = max(0, min(int(k), self.n_catalog))
            return np.zeros((0, kk), np.int64), np.zeros((0, kk), np.float32)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    @torch.no_grad()
    def recommend_one(self, user: int, k: int = 20, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of one dense user: the service's hot path (one matvec, one top-k)."""
        s = self.scores_users(torch.tensor([user], device=self.device))
        ex = None
        if exclude_seen:
            items = self.seen_items[int(self._seen_ptr[user]): int(self._seen_ptr[user + 1])]
            ex = (torch.zeros_like(items), items)
        return _finish(*topk_masked(s, k, ex))

    @torch.no_grad()
    def popular(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        return _finish(*topk_masked(self.popularity.unsqueeze(0).clone(), k))

    # -------------------------------------------------------------- fold-in
    def fold_in(self) -> FoldIn:
        if self._fold is None:
            if self.q is None:
                raise NotSupported(f"fold-in needs an embedding model, not {self.model.name}")
            terms = self.model.fold_in_terms(self.item_counts)
            var = None
            if self.dropout_aware:
                e = torch.zeros_like(self.q)
                base = self.model.base_vectors()
                e[: self.n_items] = base.detach() if base is not None else self.q[: self.n_items]
                var = self.model.dropout_variance(self.q, e)
            self._fold = FoldIn(self.q, self.h, terms.c_pos, terms.c_neg, terms.lam, self.ridge, var,
                                terms.reg, terms.reg_exponent)
        return self._fold

    @torch.no_grad()
    def recommend_history(self, items: np.ndarray, k: int = 20, exclude_history: bool = True,
                          candidates: Tensor | None = None) -> tuple[Tensor, np.ndarray, np.ndarray]:
        """Top-k for a new user given catalogue indices of items they liked.  -> (p, idx, scores)."""
        items = np.unique(np.asarray(items, dtype=np.int64))
        if len(items) == 0:
            raise JnskrError("the history is empty: give at least one known item")
        p = self.fold_in().user_vector(torch.as_tensor(items, dtype=torch.long, device=self.device))
        s = self.scores_vectors(p.unsqueeze(0))
        ex = None
        if exclude_history:
            it = torch.as_tensor(items, dtype=torch.long, device=self.device)
            ex = (torch.zeros_like(it), it)
        return (p, *_finish(*topk_masked(s, k, ex, candidates)))

    # ----------------------------------------------------------- similarity
    @torch.no_grad()
    def similar(self, item: int, k: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """Nearest catalogue items to `item` by cosine similarity of their q vectors (a model without
        vectors: by its own `item_similarity`, or `NotSupported`)."""
        if self.q is None:
            s = self.model.item_similarity(item).unsqueeze(0)
        else:
            if self._qn is None:
                self._qn = torch.nn.functional.normalize(self.q, dim=1)
            s = (self._qn @ self._qn[item]).unsqueeze(0)
        it = torch.tensor([item], device=self.device)
        return _finish(*topk_masked(s, k, (torch.zeros_like(it), it)))

    # ---------------------------------------------------------- explanation
    def facts(self):
        """The model's float64 fact table over the catalogue (raises `NotSupported` without KG)."""
        if self._facts is None:
            self._facts = self.model.explainer(self.new_items.csr() if self.new_items else None)
        return self._facts

    def user_vectors(self, users) -> Tensor:
        return self.model.user_vectors(torch.as_tensor(np.asarray(users), dtype=torch.long, device=self.device)).detach()


def _finish(values: Tensor, idx: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(idx int64 with -1 where the value is -inf, values float32) as numpy."""
    vals, idx = values.float().cpu().numpy(), idx.cpu().numpy().astype(np.int64)
    idx[~np.isfinite(vals)] = -1
    return idx, vals
