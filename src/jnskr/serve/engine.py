"""`Engine`: a loaded run prepared for queries (CLI `recommend`/`similar`, HTTP service).

Everything that does not depend on the query is computed once at construction: the item
vectors q of the whole catalogue (the run's items plus cold-start items), p_u ∘ h for every
user, the training items of each user as device CSR, the fold-in Gram matrix and (for JNSKR
with a KG) the float64 fact table used by explanations.  A query is then one matmul and one
`torch.topk` on the run's device; batches of users are vectorised (no loop over users).

Raw ids in, raw ids out: `user_index` / `item_index` map raw ids to dense indices and raise
`UnknownUser` / `UnknownItem` (both `JnskrError`).  Catalogue indices ``< n_items`` are the
run's items; ``>= n_items`` are cold-start items in file order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from jnskr.coldstart import DEFAULT_RIDGE, FoldIn, NewItems, dropout_variance, negative_weights
from jnskr.errors import JnskrError
from jnskr.explain import FactTable, Names, explanation_rows
from jnskr.models.jnskr import csr_gather


class UnknownUser(JnskrError):
    pass


class UnknownItem(JnskrError):
    pass


@dataclass
class TopK:
    """Top-k of n query rows: catalogue indices and scores ([n, k]; -inf/-1 where a row has
    fewer than k candidates)."""

    items: np.ndarray  # int64 [n, k]
    scores: np.ndarray  # float32 [n, k]

    def valid(self) -> np.ndarray:
        return np.isfinite(self.scores)


class Engine:
    """A run prepared for fast top-k, similarity, fold-in and explanation queries."""

    def __init__(self, rec, new_items: NewItems | None = None, ridge: float = DEFAULT_RIDGE,
                 dropout_aware: bool = True):
        rec._require_model()
        self.dropout_aware = dropout_aware
        self.rec = rec
        self.config = rec.config
        self.kind = {"jnskr_sampled": "jnskr", "bpr": "enmf"}.get(rec.config.model, rec.config.model)
        self.ids = rec.ids
        self.device = rec.device
        model = rec.model.eval()
        self.model = model
        n_items = int(rec.ids["n_items"])
        self.n_items = n_items
        self.has_kg = self.kind == "jnskr" and getattr(model, "has_kg", False)
        if new_items is not None and len(new_items) and not self.has_kg:
            raise JnskrError("--new-items needs a JNSKR run trained with a KG (cold-start items are built "
                             "from their KG neighbours)")
        self.new_items = new_items if new_items is not None and len(new_items) else None
        n_new = len(self.new_items) if self.new_items else 0
        self.n_catalog = n_items + n_new
        # raw ids and names of the catalogue
        self.user_ids: list[str] = rec.ids.get("user_ids") or [str(u) for u in range(rec.ids["n_users"])]
        self.item_ids: list[str] = list(rec.ids.get("item_ids") or [str(i) for i in range(n_items)])
        names = rec.ids.get("item_names")
        self.item_names: list[str] | None = list(names) if names else None
        if self.new_items:
            self.item_ids += self.new_items.ids
            if self.item_names is not None:
                self.item_names += [""] * n_new
        self._user_lookup = {u: k for k, u in enumerate(self.user_ids)}
        self._item_lookup = {i: k for k, i in enumerate(self.item_ids)}
        # training items of each user (excluded from recommendations by default)
        seen = rec.train_seen
        self.seen_indptr = torch.as_tensor(seen.indptr, dtype=torch.long, device=self.device)
        self.seen_items = torch.as_tensor(seen.indices, dtype=torch.long, device=self.device)
        self._seen_ptr = seen.indptr  # numpy copy for the single-user hot path
        counts = np.zeros(self.n_catalog, dtype=np.float32)
        counts[:n_items] = np.asarray(rec.item_counts, dtype=np.float32)
        self.popularity = torch.as_tensor(counts, device=self.device)
        self.facts: FactTable | None = None
        self._fold: FoldIn | None = None
        self._qn: Tensor | None = None
        self.ridge = ridge
        with torch.no_grad():
            if self.kind == "popularity":
                self.q = None
                self.uh = None
            else:
                q = model.item_vectors()
                if self.new_items:
                    self.facts = FactTable(model, self.new_items.csr())
                    q = torch.cat([q, self.facts.item_vectors()[n_items:].to(q.dtype)])
                self.q = q.detach().contiguous()  # [N', d]
                self.h = model.h.detach()
                self.uh = (model.users() * self.h).detach().contiguous()  # [M, d] p_u ∘ h
                self.qT = self.q.T.contiguous()
        self.names = Names(rec.ids, rec.item_kg.tail_entity if rec.item_kg is not None else None) \
            if self.has_kg else None

    # ------------------------------------------------------------------ ids
    @classmethod
    def load(cls, run_dir, device: str | None = None, new_items_path=None, ridge: float = DEFAULT_RIDGE):
        from jnskr.api import Recommender
        from jnskr.coldstart import read_new_items

        rec = Recommender.load(run_dir, device=device)
        new = read_new_items(new_items_path, rec.ids) if new_items_path is not None else None
        return cls(rec, new, ridge=ridge)

    def user_index(self, raw) -> int:
        k = self._user_lookup.get(str(raw))
        if k is None:
            raise UnknownUser(f"unknown user {str(raw)!r}")
        return k

    def item_index(self, raw) -> int:
        k = self._item_lookup.get(str(raw))
        if k is None:
            raise UnknownItem(f"unknown item {str(raw)!r}")
        return k

    @staticmethod
    def _indices(lookup: dict, raws: list[str], error, kind: str, where: str) -> np.ndarray:
        out = np.empty(len(raws), dtype=np.int64)
        for k, r in enumerate(raws):
            j = lookup.get(r)
            if j is None:
                raise error(f"{where}unknown {kind} {r!r}")
            out[k] = j
        return out

    def user_indices(self, raws: list[str], where: str = "") -> np.ndarray:
        return self._indices(self._user_lookup, raws, UnknownUser, "user", where)

    def item_indices(self, raws: list[str], where: str = "") -> np.ndarray:
        return self._indices(self._item_lookup, raws, UnknownItem, "item", where)

    def item_name(self, i: int) -> str | None:
        if self.item_names is None:
            return None
        return self.item_names[i] or None

    def candidates_mask(self, items: np.ndarray | None) -> Tensor | None:
        """Boolean [N'] mask of the allowed catalogue items (None: all)."""
        if items is None:
            return None
        m = torch.zeros(self.n_catalog, dtype=torch.bool, device=self.device)
        m[torch.as_tensor(items, dtype=torch.long, device=self.device)] = True
        return m

    # -------------------------------------------------------------- scoring
    def _scores_users(self, users: Tensor) -> Tensor:
        if self.kind == "popularity":
            return self.popularity.unsqueeze(0).repeat(len(users), 1)
        return self.uh[users] @ self.qT

    def _scores_vectors(self, p: Tensor) -> Tensor:
        if self.kind == "popularity":
            return self.popularity.unsqueeze(0).repeat(len(p), 1)
        return (p.to(self.q.dtype) * self.h) @ self.qT

    def _topk(self, s: Tensor, k: int, exclude: tuple[Tensor, Tensor] | None, candidates: Tensor | None) -> TopK:
        if exclude is not None:
            s[exclude[0], exclude[1]] = -torch.inf
        if candidates is not None:
            s[:, ~candidates] = -torch.inf
        k = max(0, min(int(k), s.shape[1]))
        vals, idx = torch.topk(s, k, dim=1)
        vals, idx = vals.cpu().numpy(), idx.cpu().numpy()
        idx[~np.isfinite(vals)] = -1
        return TopK(items=idx.astype(np.int64), scores=vals)

    @torch.no_grad()
    def recommend_users(self, users: np.ndarray | Tensor, k: int = 20, exclude_seen: bool = True,
                        candidates: Tensor | None = None, batch_size: int = 1024) -> TopK:
        """Top-k for dense user indices, in batches of `batch_size` users on the run's device."""
        users = torch.as_tensor(np.asarray(users), dtype=torch.long, device=self.device)
        parts = []
        for b in torch.split(users, max(1, batch_size)):
            s = self._scores_users(b)
            ex = None
            if exclude_seen:
                seg, pos = csr_gather(self.seen_indptr, b)
                ex = (seg, self.seen_items[pos])
            parts.append(self._topk(s, k, ex, candidates))
        if not parts:
            kk = max(0, min(int(k), self.n_catalog))
            return TopK(np.zeros((0, kk), np.int64), np.zeros((0, kk), np.float32))
        return TopK(np.concatenate([p.items for p in parts]), np.concatenate([p.scores for p in parts]))

    @torch.no_grad()
    def recommend_one(self, user: int, k: int = 20, exclude_seen: bool = True) -> TopK:
        """Top-k of one dense user (the service's hot path: one matvec, one top-k)."""
        if self.kind == "popularity":
            s = self.popularity.clone()
        else:
            s = self.uh[user] @ self.qT
        if exclude_seen:
            s[self.seen_items[int(self._seen_ptr[user]): int(self._seen_ptr[user + 1])]] = -torch.inf
        k = max(0, min(int(k), s.shape[0]))
        vals, idx = torch.topk(s, k)
        vals, idx = vals.cpu().numpy()[None], idx.cpu().numpy()[None]
        idx[~np.isfinite(vals)] = -1
        return TopK(items=idx.astype(np.int64), scores=vals)

    # -------------------------------------------------------------- fold-in
    def fold_in(self) -> FoldIn:
        if self._fold is None:
            if self.kind == "popularity":
                raise JnskrError("fold-in needs an embedding model (jnskr or enmf), not popularity")
            c_pos, c_neg, lam = negative_weights(self.config, self.rec.item_counts)
            var = None
            if self.dropout_aware:
                e = None
                if self.kind == "jnskr":
                    e = torch.zeros_like(self.q)
                    e[: self.n_items] = self.model.item_emb.detach()
                var = dropout_variance(self.config, self.q, e)
            self._fold = FoldIn(self.q, self.h, c_pos, c_neg, lam, self.ridge, var)
        return self._fold

    @torch.no_grad()
    def user_vector_from_history(self, items: np.ndarray) -> Tensor | None:
        """p (float64 [d]) folded in from catalogue indices; None for popularity runs."""
        if self.kind == "popularity":
            return None
        return self.fold_in().user_vector(torch.as_tensor(items, dtype=torch.long, device=self.device))

    @torch.no_grad()
    def recommend_history(self, items: np.ndarray, k: int = 20, exclude_history: bool = True,
                          candidates: Tensor | None = None) -> tuple[Tensor | None, TopK]:
        """Top-k for a new user given catalogue indices of items they liked.  -> (p, top-k)."""
        items = np.unique(np.asarray(items, dtype=np.int64))
        if len(items) == 0:
            raise JnskrError("the history is empty: give at least one known item")
        p = self.user_vector_from_history(items)
        if p is not None:
            s = self._scores_vectors(p.unsqueeze(0))
        else:
            s = self._scores_users(torch.zeros(1, dtype=torch.long, device=self.device))
        ex = None
        if exclude_history:
            it = torch.as_tensor(items, dtype=torch.long, device=self.device)
            ex = (torch.zeros_like(it), it)
        return p, self._topk(s, k, ex, candidates)

    # ----------------------------------------------------------- similarity
    @torch.no_grad()
    def similar(self, item: int, k: int = 20) -> TopK:
        """Nearest catalogue items to `item` by cosine similarity of their q vectors."""
        if self.kind == "popularity":
            raise JnskrError("similar items need an embedding model (jnskr or enmf): "
                             "a popularity run has no item vectors")
        if self._qn is None:
            self._qn = torch.nn.functional.normalize(self.q, dim=1)
        s = (self._qn @ self._qn[item]).unsqueeze(0)
        it = torch.tensor([item], device=self.device)
        return self._topk(s, k, (torch.zeros_like(it), it), None)

    # ---------------------------------------------------------- explanation
    def fact_table(self) -> FactTable:
        if not self.has_kg:
            raise JnskrError(f"--explain needs a JNSKR run trained with a KG; this {self.kind} run has no KG facts "
                             "to explain a score with")
        if self.facts is None:
            self.facts = FactTable(self.model, self.new_items.csr() if self.new_items else None)
        return self.facts

    def user_vectors(self, users: np.ndarray) -> Tensor:
        return self.model.users(torch.as_tensor(users, dtype=torch.long, device=self.device)).detach()

    @torch.no_grad()
    def explain(self, p: Tensor, items: np.ndarray, top: int | None = 5) -> list[dict]:
        """Explanations (dicts, see `jnskr.explain.explanation_rows`) of rows (p_i, items_i)."""
        ft = self.fact_table()
        ex = ft.explain(p, torch.as_tensor(items, dtype=torch.long, device=self.device), top)
        return explanation_rows(ex, self.names)

    # -------------------------------------------------------------- output
    def rows(self, top: TopK, users: list[str] | None = None) -> list[dict]:
        """JSON-ready rows {user?, rank, item, score, name?} of a top-k (valid entries only)."""
        out = []
        valid = top.valid()
        for r in range(top.items.shape[0]):
            for c in np.flatnonzero(valid[r]).tolist():
                i = int(top.items[r, c])
                row = {"rank": c + 1, "item": self.item_ids[i], "score": float(top.scores[r, c])}
                if users is not None:
                    row = {"user": users[r], **row}
                nm = self.item_name(i)
                if self.item_names is not None:
                    row["name"] = nm or ""
                out.append(row)
        return out

    def metadata(self) -> dict:
        m = self.rec.metrics or {}
        return {
            "model": self.kind,
            "dataset": self.ids.get("dataset"),
            "n_users": int(self.ids["n_users"]),
            "n_items": self.n_items,
            "n_new_items": self.n_catalog - self.n_items,
            "embed_dim": int(self.q.shape[1]) if self.q is not None else None,
            "has_kg": self.has_kg,
            "explain": self.has_kg,
            "relations": len(self.ids.get("relation_names") or []),
            "entities": len(self.ids.get("tail_entity_ids") or []),
            "entity_names": bool(self.names.any_named) if self.names else False,
            "item_names": self.item_names is not None,
            "similarity": "cosine similarity of the item vectors q_v = e_v + m_v",
            "fold_in_ridge": self.ridge,
            "device": str(self.device),
            "test_metrics": m.get("test", {}),
        }
