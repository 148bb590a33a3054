"""Checks before KG training, so that a result is never silently wrong or never started.

* `check_splits`: a validation split that is empty, or whose every triple has an entity that
  train never saw, cannot select an epoch (the untrained model would be saved as "best"): a
  one-line error.  Valid/test triples that are also training triples inflate the metrics: a
  warning with their counts.
* `check_memory`: the tables, their gradients and optimiser state, the best-epoch copy, the
  triple indexes and the score chunks, estimated from the data's sizes and the config before
  anything is allocated; over the machine's memory it is a one-line error naming ``dim``.
"""

from __future__ import annotations

import logging

import torch

from jnskr.data.memory import gb, machine_memory
from jnskr.errors import ConfigError, JnskrError

__all__ = ["check_splits", "estimate_bytes", "check_memory", "check_before_training"]

log = logging.getLogger("jnskr")

#: per table float: parameters, gradients, two optimiser moments (Adam; Adagrad keeps one), the
#: best-epoch copy and the solver's working copy
TABLE_COPIES = 6
#: bytes per training triple: the int64 triples and their reciprocals, the permutation, the
#: known-triple indexes (keys and values, both directions) and the negative-weight vectors
PER_TRIPLE = 3 * 8 * 2 + 8 * 2 + 8 * 4 * 2


def _in_train(data, split: str) -> int:
    """Triples of `split` that are also training triples."""
    t = data.split(split)
    if not t.shape[0] or not data.train.shape[0]:
        return 0
    n_e, n_r = max(data.n_entities, 1), max(data.n_relations, 1)
    key = lambda x: (x[:, 0] * n_r + x[:, 1]) * n_e + x[:, 2]  # noqa: E731
    return int(torch.isin(key(t), key(data.train)).sum())


def check_splits(cfg, data) -> None:
    where = data.source or data.name
    if data.valid.shape[0] == 0:
        raise JnskrError(f"{where}: the validation split is empty: no epoch can be selected (the untrained "
                         "model would be saved); give valid.txt some triples")
    seen = data.seen_in_train()
    usable = int((seen[data.valid[:, 0]] & seen[data.valid[:, 2]]).sum())
    if usable == 0:
        raise JnskrError(f"{where}: every validation triple has an entity that train never saw ({data.valid.shape[0]} "
                         "triples): their ranks say nothing about training, so no epoch can be selected")
    for split in ("valid", "test"):
        n = _in_train(data, split)
        if n:
            log.warning("%s: %d of %d %s triples are also training triples (their filtered ranks measure "
                        "memorisation, not completion)", where, n, data.split(split).shape[0], split)


def estimate_bytes(cfg, data) -> int:
    from jnskr.kg.models import get_model

    spec = get_model(cfg.model)
    rel_rows = data.n_relations * (2 if cfg.reciprocal else 1)
    floats = sum(r * w for r, w in spec.table_shapes(data.n_entities, rel_rows, cfg.dim).values())
    width = 8 if cfg.dtype == "float64" else 4
    n_triples = int(data.train.shape[0] + data.valid.shape[0] + data.test.shape[0])
    chunks = int(cfg.eval.memory_mb * 2**20) + 256 * 2**20  # one score chunk; the ALS solver's chunk
    grams = 8 * (2 * cfg.dim) ** 2 * 4
    return TABLE_COPIES * width * floats + PER_TRIPLE * n_triples + chunks + grams


def check_memory(cfg, data, limit: int | None = None) -> int:
    need = estimate_bytes(cfg, data)
    limit = machine_memory() if limit is None else limit
    if limit and need > limit:
        raise ConfigError(f"dim={cfg.dim}: training {cfg.model} would need about {gb(need)} for "
                          f"{data.n_entities:,} entities and {data.n_relations:,} relations, over the {gb(limit)} "
                          "memory limit (this machine's memory); lower dim")
    return need


def check_before_training(cfg, data) -> None:
    """Every check above, before anything of the data's size is allocated."""
    check_splits(cfg, data)
    check_memory(cfg, data)
