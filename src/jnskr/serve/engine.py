"""`Engine`: a `Recommender` prepared for the service and the CLI's output.

The queries are the Recommender's (`jnskr.query.Catalog` underneath); the engine adds what
serving needs on top: raw-id lookups that raise `UnknownUser`/`UnknownItem` (404 in the
service), JSON-ready rows with names and explanations, and the metadata document.
"""

from __future__ import annotations

import bisect

import numpy as np
import torch
from torch import Tensor

from jnskr.coldstart import DEFAULT_RIDGE, NewItems
from jnskr.explain import Names, explanation_rows
from jnskr.ids import UnknownItem, UnknownUser

__all__ = ["Engine", "UnknownItem", "UnknownUser"]


class Engine:
    """A run prepared for fast top-k, similarity, fold-in and explanation queries."""

    def __init__(self, rec, new_items: NewItems | None = None, ridge: float = DEFAULT_RIDGE,
                 dropout_aware: bool = True):
        rec = rec.with_queries(new_items, ridge=ridge, dropout_aware=dropout_aware)
        self.rec = rec
        self.cat = rec.catalog()
        self.ids = rec.ids
        self.kind = rec.config.model
        self.device = self.cat.device
        self.n_items = self.ids.n_items
        self.n_catalog = self.cat.n_catalog
        self.user_ids = self.ids.users()
        self.item_ids = rec.item_ids.tolist()
        names = self.ids.item_names
        self.item_names = (list(names) + [""] * (self.n_catalog - self.n_items)) if names else None
        self._item_lookup = {i: k for k, i in enumerate(self.item_ids)}
        self.has_kg = bool(rec.model.has_kg)
        self.names = rec.names() if self.has_kg else None
        self._sorted_users: list[str] | None = None
        self._p: Tensor | None = None
        self._writer = None

    @classmethod
    def load(cls, run_dir, device: str | None = None, new_items_path=None, ridge: float = DEFAULT_RIDGE,
             checkpoint: str = "final") -> "Engine":
        from jnskr.api import Recommender
        from jnskr.coldstart import read_new_items

        rec = Recommender.load(run_dir, device=device, checkpoint=checkpoint)
        new = read_new_items(new_items_path, rec.ids) if new_items_path is not None else None
        return cls(rec, new, ridge=ridge)

    # ------------------------------------------------------------------ ids
    def user_index(self, raw) -> int:
        return int(self.ids.user_index([raw])[0])

    def item_index(self, raw) -> int:
        return int(self.rec.item_index([raw])[0])

    def user_indices(self, raws: list[str], where: str = "") -> np.ndarray:
        return self.ids.user_index(raws, where)

    def item_indices(self, raws: list[str], where: str = "") -> np.ndarray:
        return self.rec.item_index(raws, where)

    def item_name(self, i: int) -> str | None:
        if self.item_names is None:
            return None
        return self.item_names[i] or None

    # -------------------------------------------------------------- queries
    def recommend_users(self, users, k=20, exclude_seen=True, candidates=None, batch_size=1024):
        return self.cat.recommend_users(users, k, exclude_seen, candidates, batch_size)

    def recommend_one(self, user: int, k: int = 20, exclude_seen: bool = True):
        return self.cat.recommend_one(user, k, exclude_seen)

    def recommend_history(self, items, k=20, exclude_history=True, candidates=None):
        p, idx, scores = self.cat.recommend_history(items, k, exclude_history, candidates)
        return p, (idx, scores)

    def similar(self, item: int, k: int = 20):
        return self.cat.similar(item, k)

    def popular(self, k: int):
        return self.cat.popular(k)

    def candidates_mask(self, items):
        return self.cat.candidates_mask(items)

    def fact_table(self):
        return self.cat.facts()

    @torch.no_grad()
    def user_vectors(self, users) -> Tensor:
        """p_u of dense `users` [n] -> [n, d], from a table computed once: the model's own
        `user_vectors` runs `encode()`, which recomputes every item vector (with attention over
        every KG fact) on each call."""
        if self._p is None:
            self._p = self.cat.model.user_vectors().detach()
        return self._p.index_select(0, torch.as_tensor(np.asarray(users), dtype=torch.long, device=self._p.device))

    @torch.no_grad()
    def breakdown(self, p: Tensor, items: np.ndarray, top: int | None = 5):
        """The `jnskr.explain.FactBreakdown` of rows (p_i, items_i)."""
        return self.fact_table().explain(p, torch.as_tensor(np.asarray(items), dtype=torch.long, device=self.device), top)

    def explain(self, p: Tensor, items: np.ndarray, top: int | None = 5) -> list[dict]:
        """Explanations (dicts, see `jnskr.explain.explanation_rows`) of rows (p_i, items_i)."""
        return explanation_rows(self.breakdown(p, items, top), self.names or Names(self.ids, None))

    def writer(self):
        """The `jnskr.serve.encode.RowWriter` of this engine (built on first use)."""
        if self._writer is None:
            from jnskr.serve.encode import RowWriter

            self._writer = RowWriter(self)
        return self._writer

    # -------------------------------------------------------------- output
    def rows(self, top: tuple[np.ndarray, np.ndarray], users: list[str] | None = None, start: int = 0) -> list[dict]:
        """JSON-ready rows {user?, rank, item, score, name?} of a top-k (valid entries only);
        `start`: the rank - 1 of the first column (a slice of a longer list)."""
        idx, scores = top
        out = []
        valid = idx >= 0
        for r in range(idx.shape[0]):
            for c in np.flatnonzero(valid[r]).tolist():
                i = int(idx[r, c])
                row = {"rank": start + c + 1, "item": self.item_ids[i], "score": float(scores[r, c])}
                if users is not None:
                    row = {"user": users[r], **row}
                if self.item_names is not None:
                    row["name"] = self.item_name(i) or ""
                out.append(row)
        return out

    # ------------------------------------------------------- browsing (page)
    def users_with_prefix(self, prefix: str, limit: int) -> tuple[list[str], bool]:
        """Raw user ids starting with `prefix` in string order, at most `limit`.  -> (ids, more?)."""
        if self._sorted_users is None:
            self._sorted_users = sorted(self.user_ids)
        lo = bisect.bisect_left(self._sorted_users, prefix)
        out = []
        for u in self._sorted_users[lo: lo + limit + 1]:
            if not u.startswith(prefix):
                break
            out.append(u)
        return out[:limit], len(out) > limit

    def seen_items(self, user: int) -> np.ndarray:
        """Dense indices of the training items of dense `user`."""
        return np.asarray(self.rec.train_seen.row(user), dtype=np.int64)

    def metadata(self) -> dict:
        m = self.rec.metrics or {}
        q = self.cat.q
        return {
            "model": self.kind,
            "dataset": self.ids.dataset,
            "n_users": int(self.ids.n_users),
            "n_items": self.n_items,
            "n_new_items": self.n_catalog - self.n_items,
            "embed_dim": int(q.shape[1]) if q is not None else None,
            "has_kg": self.has_kg,
            "explain": self.has_kg,
            "relations": len(self.ids.relation_names),
            "entities": len(self.ids.tail_entity_ids),
            "entity_names": bool(self.names.any_named) if self.names else False,
            "item_names": self.item_names is not None,
            "similarity": "cosine similarity of the item vectors q_v = e_v + m_v",
            "fold_in_ridge": self.rec.ridge,
            "device": str(self.device),
            "test_metrics": m.get("test", {}),
        }
