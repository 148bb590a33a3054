"""Synthetic datasets of any size, shaped like the real ones (for benchmarks and scaling).

Item popularity and entity popularity follow power laws; each user's item count is
log-normal.  `amazon_book_like(scale)` matches KGAT Amazon-book's sizes times `scale`:
70,679 users, 24,915 items, 88,572 tail entities, 39 relations, 652,514 train pairs, and
64 KG facts per item on average (the yardstick of the speed issue).
"""

from __future__ import annotations

import numpy as np

from jnskr.data.dataset import Dataset, Interactions, KnowledgeGraph

AMAZON_BOOK = dict(n_users=70_679, n_items=24_915, n_entities=88_572, n_relations=39, n_train=652_514,
                   n_test=193_920, facts_per_item=64)


def _powerlaw_choice(rng: np.random.Generator, n: int, size: int, exponent: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** exponent
    w /= w.sum()
    return rng.permutation(n)[rng.choice(n, size=size, p=w)]


def _unique_pairs(rng, n_rows: int, n_cols: int, target: int, col_exponent: float) -> tuple[np.ndarray, np.ndarray]:
    """About `target` distinct (row, col) pairs; every row gets at least one."""
    per_row = rng.lognormal(mean=0.0, sigma=1.0, size=n_rows)
    per_row = np.maximum(1, np.round(per_row / per_row.sum() * target * 1.08)).astype(np.int64)
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), per_row)
    cols = _powerlaw_choice(rng, n_cols, len(rows), col_exponent).astype(np.int64)
    key = np.unique(rows * n_cols + cols)
    if len(key) > target:
        key = np.sort(rng.choice(key, size=target, replace=False))
    return key // n_cols, key % n_cols


def synthetic_dataset(
    n_users: int,
    n_items: int,
    n_entities: int,
    n_relations: int,
    n_train: int,
    n_test: int,
    facts_per_item: float,
    seed: int = 0,
    name: str = "synthetic",
) -> Dataset:
    """A random dataset with the given sizes.  `n_entities` counts the non-item tail entities."""
    rng = np.random.default_rng(seed)
    u, i = _unique_pairs(rng, n_users, n_items, n_train + n_test, 0.8)
    test_mask = rng.random(len(u)) < n_test / max(len(u), 1)
    train = Interactions.from_pairs(u[~test_mask], i[~test_mask], n_users, n_items)
    test = Interactions.from_pairs(u[test_mask], i[test_mask], n_users, n_items)
    n_facts = int(facts_per_item * n_items)
    h, t = _unique_pairs(rng, n_items, n_entities, n_facts, 0.7)
    r = rng.integers(0, n_relations, size=len(h))
    kg = KnowledgeGraph(heads=h, relations=r.astype(np.int64), tails=(t + n_items).astype(np.int64),
                        n_entities=n_items + n_entities, n_relations=n_relations)
    return Dataset(name=name, n_users=n_users, n_items=n_items, train=train, test=test, kg=kg)


def amazon_book_like(scale: float = 1.0, seed: int = 0) -> Dataset:
    """Amazon-book's sizes times `scale` (facts per item unchanged)."""
    s = {k: (int(round(v * scale)) if k not in ("n_relations", "facts_per_item") else v)
         for k, v in AMAZON_BOOK.items()}
    return synthetic_dataset(**s, seed=seed, name=f"synthetic-amazon-x{scale:g}")
