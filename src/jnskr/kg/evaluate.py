"""Filtered link-prediction evaluation: both directions, realistic ranks, both unseen-entity rules.

For a test triple (h, r, t) the tail query (h, r, ?) scores every entity (1-N, one matmul per
chunk of queries), removes every *other* known true tail of (h, r) — known = train ∪ valid ∪
test — and ranks t; the head query (?, r, t) likewise.  Ties take the mean ("realistic") rank
of PyKEEN, (optimistic + pessimistic) / 2 = 1 + #{s > s_t} + #{s = s_t, other} / 2.  MRR and
Hits@k average over both directions of every triple.  Two rules for test triples whose head or
tail never occurs in train: ``kept`` (ranked like any other, as PyKEEN and LibKGE do) and
``dropped`` (left out); every evaluation reports both.  Queries are scored in chunks whose
score matrices stay under ``memory_mb``.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch
from torch import Tensor

__all__ = ["KnownTriples", "filtered_ranks", "rank_metrics", "evaluate_ranking", "RULES", "KS"]

log = logging.getLogger("jnskr")

RULES = ("kept", "dropped")
KS = (1, 3, 10)


class KnownTriples:
    """Every known true triple, indexed by (head, relation) → tails and (relation, tail) → heads."""

    def __init__(self, triples: Tensor, n_entities: int, n_relations: int):
        triples = torch.unique(triples, dim=0)
        self.n_relations = n_relations
        self._tails = self._index(triples[:, 0] * n_relations + triples[:, 1], triples[:, 2])
        self._heads = self._index(triples[:, 2] * n_relations + triples[:, 1], triples[:, 0])

    @staticmethod
    def _index(keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        order = torch.argsort(keys, stable=True)
        return keys[order].contiguous(), values[order].contiguous()

    @staticmethod
    def _lookup(index: tuple[Tensor, Tensor], q: Tensor) -> tuple[Tensor, Tensor]:
        keys, values = index
        lo = torch.searchsorted(keys, q, right=False)
        hi = torch.searchsorted(keys, q, right=True)
        counts = hi - lo
        rows = torch.repeat_interleave(torch.arange(q.shape[0]), counts)
        start = torch.repeat_interleave(lo - (torch.cumsum(counts, 0) - counts), counts)
        return rows, values[start + torch.arange(rows.shape[0])]

    def tails(self, heads: Tensor, relations: Tensor) -> tuple[Tensor, Tensor]:
        """(query row, entity) pairs of the known tails of each (head, relation) query."""
        return self._lookup(self._tails, heads * self.n_relations + relations)

    def heads(self, relations: Tensor, tails: Tensor) -> tuple[Tensor, Tensor]:
        """(query row, entity) pairs of the known heads of each (relation, tail) query."""
        return self._lookup(self._heads, tails * self.n_relations + relations)


def _chunk(n_entities: int, memory_mb: float) -> int:
    # float32 scores + two boolean comparisons + the mask scatter: ≤ 8 bytes per score
    return max(1, int(memory_mb * 2**20 // (8 * max(n_entities, 1))))


@torch.no_grad()
def filtered_ranks(score: Callable[[Tensor, Tensor], Tensor], a: Tensor, b: Tensor, target: Tensor,
                   known: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]], n_entities: int,
                   memory_mb: float = 512.0) -> Tensor:
    """Realistic filtered ranks of `target` among the scores `score(a, b)` ([B, n_entities]).

    `known(a, b)` gives (row, entity) pairs to filter out (the target among them or not).
    a, b, target: [n] int64 -> [n] float64 ranks (1 = best).
    """
    out = torch.empty(target.shape[0], dtype=torch.float64)
    step = _chunk(n_entities, memory_mb)
    nan_targets = 0
    for s in range(0, target.shape[0], step):
        qa, qb, tg = a[s:s + step], b[s:s + step], target[s:s + step]
        scores = score(qa, qb)
        rows = torch.arange(tg.shape[0])
        st = scores[rows, tg].clone().unsqueeze(1)
        fr, fc = known(qa, qb)
        scores[fr, fc] = float("-inf")
        scores[rows, tg] = float("-inf")
        gt = (scores > st).sum(1)
        eq = (scores == st).sum(1)
        rank = 1.0 + gt.to(torch.float64) + 0.5 * eq.to(torch.float64)
        lost = torch.isnan(st.squeeze(1))
        if bool(lost.any()):  # NaN compares false with everything: it would rank first; rank it last
            rank[lost] = 1.0 + (scores[lost] != float("-inf")).sum(1).to(torch.float64)
            nan_targets += int(lost.sum())
        out[s:s + tg.shape[0]] = rank
    if nan_targets:
        log.warning("%d of %d queries scored their true entity NaN: ranked last (the model is broken; "
                    "its metrics are not to be trusted)", nan_targets, target.shape[0])
    return out


def rank_metrics(ranks: Tensor, ks: tuple[int, ...] = KS) -> dict:
    """{"mrr", "hits@k"..., "queries"} of realistic ranks (hits: rank ≤ k)."""
    n = int(ranks.shape[0])
    out = {"mrr": float((1.0 / ranks).mean()) if n else float("nan")}
    for k in ks:
        out[f"hits@{k}"] = float((ranks <= k).to(torch.float64).mean()) if n else float("nan")
    out["queries"] = n
    return out


@torch.no_grad()
def evaluate_ranking(score_tails: Callable[[Tensor, Tensor], Tensor],
                     score_heads: Callable[[Tensor, Tensor], Tensor], triples: Tensor, known: KnownTriples,
                     seen: Tensor, n_entities: int, memory_mb: float = 512.0, rules: tuple[str, ...] = RULES
                     ) -> dict:
    """{"kept": metrics, "dropped": metrics} over both directions of `triples` ([n, 3]).

    `seen`: [n_entities] bool, entity occurs in train; ``dropped`` keeps triples whose head
    and tail are both seen.  Each rule's metrics also hold "triples", "tail_mrr", "head_mrr".
    """
    h, r, t = triples[:, 0], triples[:, 1], triples[:, 2]
    tail_ranks = filtered_ranks(score_tails, h, r, t, known.tails, n_entities, memory_mb)
    head_ranks = filtered_ranks(score_heads, r, t, h, known.heads, n_entities, memory_mb)
    masks = {"kept": torch.ones(h.shape[0], dtype=torch.bool), "dropped": seen[h] & seen[t]}
    out = {}
    for rule in rules:
        m = masks[rule]
        res = rank_metrics(torch.cat([tail_ranks[m], head_ranks[m]]))
        res["triples"] = int(m.sum())
        res["tail_mrr"] = rank_metrics(tail_ranks[m])["mrr"]
        res["head_mrr"] = rank_metrics(head_ranks[m])["mrr"]
        out[rule] = res
    return out
