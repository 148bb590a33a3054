"""The objective F that every solver minimises, its per-batch shares, and the negative weights.

With T⁺ the training triples (reciprocals (t, r⁻¹, h) included when enabled), E entities and
R' relation rows::

    F(Θ) = Σ_{h∈E, r∈R', t∈E} ω_hrt (y_hrt − ĝ_hrt)²  −  c⁺·|T⁺|  +  λ·Ω(Θ)

in squared-score units, summed (not averaged) over all E×R'×E triples; the constant c⁺|T⁺| is
dropped so F is what the efficient form computes.  ω_hrt = c⁺ on T⁺ and c⁻_hrt = a_h·b_r·g_t
elsewhere, scaled so that Σ_{h,r,t} c⁻_hrt = neg_total · |T⁺| (``neg_total`` is the total
negative weight per positive triple).  Ω is

* ``weighting: frequency``: Σ_{(h,r,t)∈T⁺} [p(h) + p(r) + p(t)]  (every factor of every positive,
  as kbc's N3), or
* ``weighting: uniform``: Σ over every row of every table of p(row),

with p = ½‖x‖² (``l2``) or Σ_k |x_k|³ (``n3``).  A mini-batch B ⊂ T⁺ takes the exact share

    F_B = Σ_{pos∈B}[(c⁺ − c⁻)ĝ² − 2c⁺ĝ]  +  (|B|/|T⁺|)·Σ_all c⁻ĝ²  +  λ·Ω_B

(Ω_B: the batch's factors, or |B|/|T⁺| of the uniform Ω), so Σ_B F_B = F for fixed Θ: an epoch
of mini-batch steps is a stochastic pass over exactly F.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from jnskr.kg.losses import (allpairs, allpairs_part, nonsampling_kge_loss, nonsampling_kge_loss_bruteforce, penalty,
                             positive_part, score)
from jnskr.kg.models import ModelSpec
from jnskr.losses import positive_term
from jnskr.losses.gram import weighted_grams_with_rows

__all__ = ["with_reciprocals", "negative_weights", "Objective"]


def with_reciprocals(triples: Tensor, n_relations: int) -> Tensor:
    """[n, 3] (h, r, t) -> [2n, 3]: the triples, then (t, r + n_relations, h) for each."""
    inv = torch.stack([triples[:, 2], triples[:, 1] + n_relations, triples[:, 0]], dim=1)
    return torch.cat([triples, inv], dim=0)


def _side(counts: Tensor, scheme: str, beta: float) -> Tensor:
    """Mean-1 weights: all ones (uniform) or ∝ max(count, 1)^β (degree)."""
    if scheme == "uniform":
        return torch.ones(counts.shape[0], dtype=torch.float64)
    w = counts.to(torch.float64).clamp_min(1.0) ** beta
    return w * (w.shape[0] / w.sum())


def negative_weights(pos: Tensor, n_entities: int, n_relations: int, *, total: float,
                     head: str = "uniform", relation: str = "uniform", tail: str = "uniform",
                     beta: float = 0.5, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor, Tensor]:
    """Rank-1 weights (a [E], b [R'], g [E]) of the unobserved triples, c⁻_hrt = a_h b_r g_t.

    Each side is uniform or ∝ (entity degree in `pos`, as head plus as tail)^β, resp. (relation
    frequency)^β; the scale (put on b) makes Σ_{h,r,t} c⁻_hrt = total·|pos|.
    """
    deg = torch.bincount(pos[:, 0], minlength=n_entities) + torch.bincount(pos[:, 2], minlength=n_entities)
    a = _side(deg, head, beta)
    g = _side(deg, tail, beta)
    b = _side(torch.bincount(pos[:, 1], minlength=n_relations), relation, beta)
    b = b * (total * pos.shape[0] / (a.sum() * b.sum() * g.sum()))
    return a.to(dtype), b.to(dtype), g.to(dtype)


@dataclass
class Objective:
    """F for one model and one training set (see the module docstring)."""

    spec: ModelSpec
    pos: Tensor  # [n, 3] unique training triples (reciprocals included)
    c_pos: float
    a: Tensor
    b: Tensor
    g: Tensor
    reg: str = "n3"  # l2 | n3
    lam: float = 0.0
    weighting: str = "frequency"  # frequency | uniform
    _plan_cache: list | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def n(self) -> int:
        return int(self.pos.shape[0])

    def cast(self, dtype: torch.dtype) -> "Objective":
        return Objective(self.spec, self.pos, self.c_pos, self.a.to(dtype), self.b.to(dtype), self.g.to(dtype),
                         self.reg, self.lam, self.weighting)

    def _rows_penalty(self, tables: dict[str, Tensor], pos: Tensor) -> Tensor:
        total = None
        for role, name in enumerate(self.spec.roles):
            x = tables[name].index_select(0, pos[:, role])
            p = penalty(x, self.spec.form.blocks[role], self.reg).sum()
            total = p if total is None else total + p
        return total

    def _tables_penalty(self, tables: dict[str, Tensor]) -> Tensor:
        total = None
        for name in self.spec.table_names():
            role = self.spec.roles.index(name)
            p = penalty(tables[name], self.spec.form.blocks[role], self.reg).sum()
            total = p if total is None else total + p
        return total

    def regulariser(self, tables: dict[str, Tensor], batch: Tensor | None = None) -> Tensor:
        """λ·Ω (batch None) or its batch share λ·Ω_B."""
        if self.lam == 0.0:
            return next(iter(tables.values())).new_zeros(())
        if self.weighting == "frequency":
            return self.lam * self._rows_penalty(tables, self.pos if batch is None else batch)
        share = 1.0 if batch is None else batch.shape[0] / self.n
        return (self.lam * share) * self._tables_penalty(tables)

    def _plan(self) -> list[tuple[str, list[int], list[int]]]:
        """Per table: its roles, and for each role the index of its distinct weight vector."""
        if getattr(self, "_plan_cache", None) is None:
            weights = (self.a, self.b, self.g)
            plan = []
            for name in self.spec.table_names():
                roles = [i for i, n in enumerate(self.spec.roles) if n == name]
                distinct: list[int] = []
                which = []
                for i in roles:
                    j = next((k for k, r in enumerate(distinct) if torch.equal(weights[r], weights[i])), None)
                    if j is None:
                        distinct.append(i)
                        j = len(distinct) - 1
                    which.append(j)
                plan.append((name, roles, [distinct[j] for j in which]))
            self._plan_cache = plan
        return self._plan_cache

    def batch(self, tables: dict[str, Tensor], batch: Tensor) -> Tensor:
        """F_B for a batch of rows of `pos` ([b, 3]); Σ over a partition of `pos` = F.

        One gather and one Gram op per table (`jnskr.losses.gram.weighted_grams_with_rows`), so
        each table gets one dense gradient; the same value as `nonsampling_kge_loss(..., allpairs_scale=|B|/|T⁺|)` + λΩ_B."""
        weights = (self.a, self.b, self.g)
        b = batch.shape[0]
        grams: list[Tensor | None] = [None] * 3
        rows: list[Tensor | None] = [None] * 3
        for name, roles, wsrc in self._plan():
            distinct = list(dict.fromkeys(wsrc))
            idx = torch.cat([batch[:, i] for i in roles]) if len(roles) > 1 else batch[:, roles[0]]
            gs, r = weighted_grams_with_rows(tables[name], idx, [weights[i] for i in distinct])
            for k, (i, src) in enumerate(zip(roles, wsrc)):
                grams[i] = gs[distinct.index(src)]
                rows[i] = r[k * b:(k + 1) * b] if len(roles) > 1 else r
        y = score(self.spec.form, rows[0], rows[1], rows[2])
        cn = self.a.index_select(0, batch[:, 0]) * self.b.index_select(0, batch[:, 1]) * \
            self.g.index_select(0, batch[:, 2])
        loss = positive_term(y, self.c_pos, cn) + (b / self.n) * allpairs(self.spec.form, grams[0], grams[1], grams[2])
        if self.lam == 0.0:
            return loss
        if self.weighting == "frequency":
            reg = sum(penalty(rows[i], self.spec.form.blocks[i], self.reg).sum() for i in range(3))
            return loss + self.lam * reg
        return loss + self.regulariser(tables, batch)

    @torch.no_grad()
    def value(self, tables: dict[str, Tensor], chunk: int = 1 << 16) -> float:
        """F at `tables` (efficient form, positives in chunks), as a float64 Python number."""
        H, R, T = self.spec.role_tables(tables)
        total = float(allpairs_part(self.spec.form, H, R, T, self.a, self.b, self.g))
        for s in range(0, self.n, chunk):
            part = self.pos[s:s + chunk]
            total += float(positive_part(self.spec.form, H, R, T, part, self.c_pos, self.a, self.b, self.g))
        return total + float(self.regulariser(tables))

    def full(self, tables: dict[str, Tensor]) -> Tensor:
        """F at `tables` as one differentiable scalar (small problems, tests)."""
        H, R, T = self.spec.role_tables(tables)
        loss = nonsampling_kge_loss(self.spec.form, H, R, T, self.pos, self.c_pos, self.a, self.b, self.g)
        return loss + self.regulariser(tables)

    def bruteforce(self, tables: dict[str, Tensor]) -> Tensor:
        """F by enumerating every triple (tests only): brute-force loss − c⁺|T⁺| + λΩ."""
        H, R, T = self.spec.role_tables(tables)
        loss = nonsampling_kge_loss_bruteforce(self.spec.form, H, R, T, self.pos, self.c_pos, self.a, self.b, self.g)
        return loss - self.c_pos * self.n + self.regulariser(tables)
