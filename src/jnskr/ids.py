"""`IdMaps`: the one place raw ids are resolved to dense indices and back.

Raw ids (the dataset's own, as strings) in and out at the edges (CLI, files, service, the
`Recommender` API); dense integer ids inside.  Saved as ``id_maps.json`` in a run folder, with the
keys ``dataset``, ``n_users``, ``n_items``, ``user_ids``, ``item_ids``, ``item_names``,
``relation_names``, ``tail_entity_ids``, ``tail_entity_names``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jnskr.errors import JnskrError


class UnknownUser(JnskrError):
    pass


class UnknownItem(JnskrError):
    pass


def _strings(a) -> list[str] | None:
    return None if a is None else [str(x) for x in (a.tolist() if hasattr(a, "tolist") else a)]


def _raw_ids(a, n: int) -> list[str] | None:
    """Raw ids as a list; None where they are "0", "1", ... (the dense id itself: nothing stored)."""
    out = _strings(a)
    return None if out is None or out == [str(k) for k in range(n)] else out


@dataclass
class IdMaps:
    dataset: str
    n_users: int
    n_items: int
    user_ids: list[str] | None = None  # None: the raw id is the dense id
    item_ids: list[str] | None = None
    item_names: list[str] | None = None
    relation_names: list[str] = field(default_factory=list)
    tail_entity_ids: list[str] = field(default_factory=list)
    tail_entity_names: list[str] | None = None

    def __post_init__(self) -> None:
        self._users: dict[str, int] | None = None
        self._items: dict[str, int] | None = None

    # ------------------------------------------------------------ build/save
    @classmethod
    def from_dataset(cls, ds, item_kg=None) -> "IdMaps":
        tails, tail_names = [], None
        if item_kg is not None and ds.kg is not None:
            ent = item_kg.tail_entity.tolist()
            tails = [str(ds.kg.entity_ids[e]) if ds.kg.entity_ids is not None else str(e) for e in ent]
            if ds.kg.entity_names is not None:
                tail_names = [str(ds.kg.entity_names[e]) for e in ent]
        return cls(dataset=ds.name, n_users=ds.n_users, n_items=ds.n_items, user_ids=_raw_ids(ds.user_ids, ds.n_users),
                   item_ids=_raw_ids(ds.item_ids, ds.n_items), item_names=_strings(ds.item_names),
                   relation_names=list(item_kg.relation_names) if item_kg is not None else [],
                   tail_entity_ids=tails, tail_entity_names=tail_names)

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "n_users": self.n_users, "n_items": self.n_items, "user_ids": self.user_ids,
                "item_ids": self.item_ids, "item_names": self.item_names, "relation_names": self.relation_names,
                "tail_entity_ids": self.tail_entity_ids, "tail_entity_names": self.tail_entity_names}

    @classmethod
    def from_dict(cls, d: dict, where: str = "id_maps.json") -> "IdMaps":
        if not isinstance(d, dict):
            raise JnskrError(f"{where}: expected a JSON object")
        try:
            out = cls(dataset=str(d.get("dataset", "")), n_users=int(d["n_users"]), n_items=int(d["n_items"]),
                      user_ids=d.get("user_ids"), item_ids=d.get("item_ids"), item_names=d.get("item_names"),
                      relation_names=list(d.get("relation_names") or []),
                      tail_entity_ids=list(d.get("tail_entity_ids") or []),
                      tail_entity_names=d.get("tail_entity_names"))
        except (KeyError, TypeError, ValueError) as exc:
            raise JnskrError(f"{where}: not a jnskr id map ({type(exc).__name__}: {exc})") from None
        for name, ids, n in (("user_ids", out.user_ids, out.n_users), ("item_ids", out.item_ids, out.n_items)):
            if ids is not None and (not isinstance(ids, list) or len(ids) != n):
                raise JnskrError(f"{where}: {name} does not list {n} ids")
        return out

    # --------------------------------------------------------------- lookups
    def users(self) -> list[str]:
        return self.user_ids if self.user_ids is not None else [str(u) for u in range(self.n_users)]

    def items(self) -> list[str]:
        return self.item_ids if self.item_ids is not None else [str(i) for i in range(self.n_items)]

    def user_lookup(self) -> dict[str, int]:
        if self._users is None:
            self._users = {u: k for k, u in enumerate(self.users())}
        return self._users

    def item_lookup(self) -> dict[str, int]:
        if self._items is None:
            self._items = {i: k for k, i in enumerate(self.items())}
        return self._items

    def user_index(self, raws, where: str = "") -> np.ndarray:
        """Dense indices of raw user ids (any hashable; compared as strings).  -> int64 [n]."""
        return lookup_indices(self.user_lookup(), raws, UnknownUser, "user", where)

    def item_index(self, raws, where: str = "") -> np.ndarray:
        return lookup_indices(self.item_lookup(), raws, UnknownItem, "item", where)

    def item_name(self, i: int) -> str | None:
        if self.item_names is None or i >= len(self.item_names):
            return None
        return self.item_names[i] or None


def lookup_indices(lookup: dict[str, int], raws, error, kind: str, where: str) -> np.ndarray:
    out = np.empty(len(raws), dtype=np.int64)
    for k, r in enumerate(raws):
        j = lookup.get(str(r))
        if j is None:
            shown = str(r)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise error(f"{where}unknown {kind} {shown!r}")
        out[k] = j
    return out
