"""The KG models, registered in a `jnskr.registry.Registry`: DistMult, ComplEx and CP as trilinear
forms over named tables.

A model is a `Trilinear` form (`jnskr.kg.losses`) plus the name of the table that plays each
role (head, relation, tail).  DistMult and ComplEx use one entity table for heads and tails;
CP keeps separate head and tail tables.  A table that plays exactly one role enters the score
linearly, so the objective is quadratic in it: those are the exact blocks of the ALS solver.

`KGModel` is the trained object: raw labels, tables, and `score_tails` / `score_heads`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jnskr.errors import ConfigError, JnskrError
from jnskr.kg.losses import COMPLEX, DISTMULT, Trilinear, role_query
from jnskr.registry import Registry

__all__ = ["ModelSpec", "MODELS", "get_model", "KGModel"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its trilinear form and the table behind each role."""

    name: str
    form: Trilinear
    roles: tuple[str, str, str]  # table name of (head, relation, tail)
    description: str

    def table_names(self) -> list[str]:
        return list(dict.fromkeys(self.roles))

    def table_shapes(self, n_entities: int, n_relations: int, dim: int) -> dict[str, tuple[int, int]]:
        """{table: (rows, width)} for `n_relations` relation rows (reciprocals included)."""
        out = {}
        for role, name in enumerate(self.roles):
            rows = n_relations if role == 1 else n_entities
            out[name] = (rows, self.form.width(role, dim))
        return out

    def exact_roles(self) -> list[int]:
        """Roles whose table plays no other role: the objective is quadratic in those tables."""
        return [i for i, n in enumerate(self.roles) if self.roles.count(n) == 1]

    def init_tables(self, n_entities: int, n_relations: int, dim: int, std: float,
                    generator: torch.Generator, dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
        """Normal(0, std²) tables, drawn in `table_names` order from `generator`."""
        shapes = self.table_shapes(n_entities, n_relations, dim)
        return {n: torch.randn(*shapes[n], generator=generator, dtype=torch.float64).mul_(std).to(dtype)
                for n in self.table_names()}

    def role_tables(self, tables: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        return tables[self.roles[0]], tables[self.roles[1]], tables[self.roles[2]]


MODELS: Registry[ModelSpec] = Registry("KG model", ConfigError)
MODELS.register(ModelSpec("distmult", DISTMULT, ("entity", "relation", "entity"),
                          "DistMult (Yang et al. 2015): ĝ = Σ_k e_h,k r_k e_t,k; symmetric in h and t"))
MODELS.register(ModelSpec("complex", COMPLEX, ("entity", "relation", "entity"),
                          "ComplEx (Trouillon et al. 2016): ĝ = Re Σ_k e_h,k r_k conj(e_t,k), rank d complex"))
MODELS.register(ModelSpec("cp", DISTMULT, ("head", "relation", "tail"),
                          "CP (Hitchcock 1927; Lacroix et al. 2018): ĝ = Σ_k h_h,k r_k t_t,k, separate head/tail tables"))


def get_model(name: str) -> ModelSpec:
    """The registered model `name`; an unknown name is a one-line `ConfigError`."""
    return MODELS.get(name)


class KGModel:
    """A trained KG embedding: raw labels at the edges, internal ids inside.

    `entity_ids[i]` / `relation_ids[j]` are the raw labels of internal ids i / j.  With
    reciprocal relations the relation table has 2·R rows (row R + j is the inverse of j) and
    head queries are answered by the inverse relation's tail scores, as in training.
    """

    def __init__(self, spec: ModelSpec, tables: dict[str, Tensor], entity_ids: list[str],
                 relation_ids: list[str], reciprocal: bool, config: dict | None = None,
                 metrics: dict | None = None):
        self.spec = spec
        self.tables = {k: v.detach() for k, v in tables.items()}
        self.entity_ids = list(entity_ids)
        self.relation_ids = list(relation_ids)
        self.reciprocal = bool(reciprocal)
        self.config = config or {}
        self.metrics = metrics or {}
        self._entity_index: dict[str, int] | None = None
        self._relation_index: dict[str, int] | None = None

    @property
    def n_entities(self) -> int:
        return len(self.entity_ids)

    @property
    def n_relations(self) -> int:
        return len(self.relation_ids)

    def _check(self, ids: Tensor, n: int, what: str) -> Tensor:
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
            raise IndexError(f"{what} ids must lie in 0..{n - 1}")
        return ids

    @torch.no_grad()
    def score_tails(self, heads: Tensor, relations: Tensor) -> Tensor:
        """Scores of every tail for (head, relation) queries.  [B], [B] int64 -> [B, n_entities] float."""
        h = self._check(heads, self.n_entities, "head")
        r = self._check(relations, self.n_relations, "relation")
        return self._tails(h, r)

    def _tails(self, h: Tensor, r: Tensor) -> Tensor:
        """Tail scores for relation *rows* r (reciprocal rows included)."""
        H, R, T = self.spec.role_tables(self.tables)
        q = role_query(self.spec.form, 2, H.index_select(0, h), R.index_select(0, r))
        return q @ T.transpose(0, 1)

    @torch.no_grad()
    def score_heads(self, relations: Tensor, tails: Tensor) -> Tensor:
        """Scores of every head for (relation, tail) queries.  [B], [B] int64 -> [B, n_entities] float."""
        r = self._check(relations, self.n_relations, "relation")
        t = self._check(tails, self.n_entities, "tail")
        if self.reciprocal:
            return self._tails(t, r + self.n_relations)
        H, R, T = self.spec.role_tables(self.tables)
        q = role_query(self.spec.form, 0, R.index_select(0, r), T.index_select(0, t))
        return q @ H.transpose(0, 1)

    def entity_index(self, label: str) -> int:
        if self._entity_index is None:
            self._entity_index = {e: i for i, e in enumerate(self.entity_ids)}
        if label not in self._entity_index:
            raise JnskrError(f"unknown entity {label!r} (not among the {self.n_entities:,} entities of this run)")
        return self._entity_index[label]

    def relation_index(self, label: str) -> int:
        if self._relation_index is None:
            self._relation_index = {e: i for i, e in enumerate(self.relation_ids)}
        if label not in self._relation_index:
            raise JnskrError(f"unknown relation {label!r} (not among the {self.n_relations:,} relations of this run)")
        return self._relation_index[label]

    def predict(self, *, head: str | None = None, relation: str, tail: str | None = None,
                k: int = 10) -> list[dict]:
        """Top-k tails of (head, relation, ?) or heads of (?, relation, tail), raw labels in and out."""
        if (head is None) == (tail is None):
            raise JnskrError("give exactly one of a head or a tail")
        r = torch.tensor([self.relation_index(relation)])
        if head is not None:
            scores = self.score_tails(torch.tensor([self.entity_index(head)]), r)[0]
        else:
            scores = self.score_heads(r, torch.tensor([self.entity_index(tail)]))[0]
        top = torch.topk(scores, min(max(int(k), 1), self.n_entities))
        return [{"rank": i + 1, "entity": self.entity_ids[int(j)], "score": float(s)}
                for i, (s, j) in enumerate(zip(top.values, top.indices))]
