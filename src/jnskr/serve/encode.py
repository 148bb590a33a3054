"""JSON text of the service's rows written straight from the query arrays.

The same objects as `Engine.rows` and `jnskr.explain.explanation_rows` give (same keys, same
order, floats written as ``json.dumps`` writes them), without building a dict per row and per
fact first: ids and names are JSON-encoded once, when the first answer needs them, and a row is
one f-string.  This is what bounds the cost of the largest answers (`jnskr.serve.respond`).
"""

from __future__ import annotations

import json
import re

import numpy as np

_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8(text: str) -> bytes:
    """`text` as UTF-8; a lone surrogate (a string decoded with ``surrogateescape``, or a JSON
    ``"\\ud800"``) cannot be, and becomes U+FFFD instead of failing the whole answer."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode()


def literal(value) -> str:
    """`value` as a JSON literal (strings escaped like ``json.dumps(..., ensure_ascii=False)``)."""
    return json.dumps(value, ensure_ascii=False)


def _finite(*arrays) -> None:
    for a in arrays:
        if not np.isfinite(a).all():  # JSON has no NaN or Infinity (json.dumps(allow_nan=False) raises too)
            raise ValueError("a score to send is not a finite number")


class RowWriter:
    """JSON objects of recommendation rows and explanations for one engine."""

    def __init__(self, engine):
        self.items = [literal(i) for i in engine.item_ids]
        self.names = ([literal(engine.item_name(i) or "") for i in range(engine.n_catalog)]
                      if engine.item_names is not None else None)
        self._kg_names = engine.names
        self._rel: list[str] | None = None
        self._ent: list[str] | None = None
        self._ent_name: list[str] | None = None

    def rows(self, idx: np.ndarray, scores: np.ndarray, start: int = 0,
             explanations: list[str] | None = None) -> list[str]:
        """One JSON object per valid entry of a top-k slice: `idx`, `scores` [n] (one user's
        columns start..start+n-1), `explanations` (JSON texts) for its first entries."""
        valid = np.flatnonzero(idx >= 0)
        _finite(scores[valid])
        exps = explanations or []
        out = []
        for k, c in enumerate(valid.tolist()):
            i = int(idx[c])
            s = f'{{"rank":{start + c + 1},"item":{self.items[i]},"score":{float(scores[c])!r}'
            if self.names is not None:
                s += f',"name":{self.names[i]}'
            if k < len(exps):
                s += f',"explanation":{exps[k]}'
            out.append(s + "}")
        return out

    def items_only(self, items: np.ndarray) -> list[str]:
        """``{"item", "name"?}`` of catalogue indices."""
        if self.names is None:
            return [f'{{"item":{self.items[i]}}}' for i in np.asarray(items).tolist()]
        return [f'{{"item":{self.items[i]},"name":{self.names[i]}}}' for i in np.asarray(items).tolist()]

    def _kg_literals(self, n_rel: int, n_tail: int) -> None:
        """JSON literals of relation names, entity ids and entity names, covering indices up to
        `n_rel` and `n_tail` (object arrays, for fancy indexing)."""
        names = self._kg_names
        if self._rel is None or len(self._rel) < n_rel:
            self._rel = np.array([literal(names.relation(r)) for r in range(max(n_rel, len(names.relations)))], dtype=object)
        if self._ent is None or len(self._ent) < n_tail:
            n = max(n_tail, len(names.tail_ids))
            self._ent = np.array([literal(names.entity(t)) for t in range(n)], dtype=object)
            self._ent_name = np.array([literal(names.entity_name(t)) for t in range(n)], dtype=object)

    def explanations(self, ex) -> list[str]:
        """One JSON object per row of a `jnskr.explain.FactBreakdown`: score, base, kg, n_facts,
        facts (relation, entity, entity_name, alpha, contribution), rest."""
        _finite(ex.score, ex.base, ex.kg, ex.rest, ex.alpha, ex.contribution)
        n = len(ex.base)
        if len(ex.relation):
            self._kg_literals(int(ex.relation.max()) + 1, int(ex.tail.max()) + 1)
        facts = [f'{{"relation":{r},"entity":{e},"entity_name":{m},"alpha":{a!r},"contribution":{c!r}}}'
                 for r, e, m, a, c in zip(self._rel[ex.relation].tolist() if len(ex.relation) else [],
                                          self._ent[ex.tail].tolist() if len(ex.tail) else [],
                                          self._ent_name[ex.tail].tolist() if len(ex.tail) else [],
                                          ex.alpha.tolist(), ex.contribution.tolist())]
        bounds = np.searchsorted(ex.fact_row, np.arange(n + 1)).tolist()
        return [f'{{"score":{s!r},"base":{b!r},"kg":{k!r},"n_facts":{int(nf)},'
                f'"facts":[{",".join(facts[bounds[i]:bounds[i + 1]])}],"rest":{r!r}}}'
                for i, (s, b, k, nf, r) in enumerate(zip(ex.score.tolist(), ex.base.tolist(), ex.kg.tolist(),
                                                         ex.n_facts.tolist(), ex.rest.tolist()))]
