"""Make the RecBole golden-evaluator fixture: tests/data/recbole_golden/recbole_golden.json.

Run with the RecBole venv's python (the test that reads the fixture needs no RecBole):

    bench/peers/recbole/.venv/bin/python bench/peers/recbole/make_golden.py

What it does, with RecBole 1.2.1's own code:

1. Builds a small synthetic full-ranking case: ``n_items`` items, users with train items
   (excluded from ranking) and test items, and a ties-free score matrix (distinct integer
   scores, exact in float32 and float64).  Users include: 1 test item hit at rank 1; 1 test item
   at rank 7; 1 test item ranked beyond every cutoff; the spec's worked example (3 test items, the
   only hit at rank 3); 2 test items at ranks 1-2; more test items than the largest cutoff (45);
   train items scored above everything (exclusion matters); random users; and one user with
   no test items (jnskr must skip it; RecBole never sees such a user).
2. Scores them the way RecBole's ``Trainer._full_sort_batch_eval`` does: item ids shifted by 1
   (RecBole's id 0 is [PAD]), ``scores[:, 0] = -inf``, ``scores[history] = -inf``.
3. Collects with ``recbole.evaluator.Collector.eval_batch_collect`` (``rec.topk``: torch.topk,
   the positive mask, ``pos_len``) and evaluates with ``recbole.evaluator.Evaluator`` (metrics
   Recall, NDCG, Precision, Hit from ``recbole.evaluator.metrics``), plus each metric's
   ``metric_info`` for per-user values.
4. Writes the inputs, RecBole's ``rec.topk`` matrix and its outputs as JSON.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
OUT = REPO / "tests" / "data" / "recbole_golden" / "recbole_golden.json"

N_ITEMS = 60
KS = [1, 3, 5, 10, 20, 40]
SEED = 2020


def _user(rng: random.Random, n_train: int, test_ranks: list[int] | None = None, n_test: int = 0,
          train_on_top: bool = False) -> dict:
    """One user with `n_train` train items and test items at given 1-based candidate ranks.

    test_ranks: ranks among the candidates (non-train items) of the test items; or None for
    `n_test` random test items.  train_on_top: the train items get the highest scores of all.
    """
    items = list(range(N_ITEMS))
    rng.shuffle(items)
    train, rest = items[:n_train], items[n_train:]
    # `rest` in random order is the candidate ranking (rank 1 = rest[0])
    if test_ranks is None:
        test = rng.sample(rest, n_test)
    else:
        test = [rest[r - 1] for r in test_ranks]
    # full order: interleave the train items into the candidate order at random positions
    order = list(rest)
    for t in train:
        pos = 0 if train_on_top else rng.randrange(len(order) + 1)
        order.insert(pos, t)
    scores = [0.0] * N_ITEMS
    for pos, i in enumerate(order):
        scores[i] = float(N_ITEMS - pos)  # distinct; higher = better
    return {"train": sorted(train), "test": sorted(test), "scores": scores}


def build_case() -> list[dict]:
    rng = random.Random(SEED)
    users = [
        _user(rng, 5, [1]),                       # 1 test item, hit at rank 1
        _user(rng, 8, [7]),                       # 1 test item at rank 7
        _user(rng, 3, [45]),                      # 1 test item beyond every cutoff
        _user(rng, 4, [3, 50, 55]),               # spec §6 worked example: only hit at rank 3
        _user(rng, 2, [1, 2]),                    # 2 test items at ranks 1 and 2
        _user(rng, 10, None, 45),                 # more test items (45) than the largest K
        _user(rng, 6, [2, 4, 9, 21, 38], train_on_top=True),  # train items above all
        _user(rng, 0, None, 12),                  # no train items at all
        _user(rng, 15, [40]),                     # hit exactly at the last cutoff
        _user(rng, 7, None, 0),                   # no test items: skipped by both
    ]
    for _ in range(6):                            # random users
        users.append(_user(rng, rng.randrange(0, 15), None, rng.randrange(1, 20)))
    return users


def recbole_eval(users: list[dict]) -> dict:
    from recbole.config import Config
    from recbole.evaluator import Collector, Evaluator
    from recbole.evaluator.metrics import NDCG, Hit, Precision, Recall

    # RecBole's Config.__init__ restores numpy's removed aliases (np.float = np.float_, ...) that its
    # metrics use; we build no Config here, so apply the same settings (the method ignores self).
    Config.compatibility_settings(None)
    config = {
        "metrics": ["Recall", "NDCG", "Precision", "Hit"],
        "topk": KS,
        "metric_decimal_place": 15,
        "eval_args": {"mode": "full"},
        "device": torch.device("cpu"),
    }
    evaluated = [u for u, d in enumerate(users) if d["test"]]  # RecBole evaluates users with positives
    n = len(evaluated)
    # RecBole ids: item i -> i + 1 (0 is [PAD]); the trainer sets the PAD and history columns to -inf
    scores = torch.full((n, N_ITEMS + 1), 0.0, dtype=torch.float32)
    scores[:, 1:] = torch.tensor([users[u]["scores"] for u in evaluated], dtype=torch.float32)
    scores[:, 0] = -np.inf
    hist_u = [r for r, u in enumerate(evaluated) for _ in users[u]["train"]]
    hist_i = [i + 1 for u in evaluated for i in users[u]["train"]]
    scores[torch.tensor(hist_u, dtype=torch.long), torch.tensor(hist_i, dtype=torch.long)] = -np.inf
    pos_u = torch.tensor([r for r, u in enumerate(evaluated) for _ in users[u]["test"]], dtype=torch.long)
    pos_i = torch.tensor([i + 1 for u in evaluated for i in users[u]["test"]], dtype=torch.long)

    collector = Collector(config)
    collector.eval_batch_collect(scores, None, pos_u, pos_i)
    struct = collector.get_data_struct()
    result = Evaluator(config).evaluate(struct)

    rec_topk = struct.get("rec.topk")
    pos_index, pos_len = torch.split(rec_topk, [max(KS), 1], dim=1)
    pos_index = pos_index.to(torch.bool).numpy()
    pos_len = pos_len.squeeze(-1).numpy()
    per_user = {}
    for name, cls in (("recall", Recall), ("ndcg", NDCG), ("precision", Precision), ("hit", Hit)):
        m = cls(config)
        info = m.metric_info(pos_index, pos_len) if name in ("recall", "ndcg") else m.metric_info(pos_index)
        for k in KS:
            per_user[f"{name}@{k}"] = [float(v) for v in info[:, k - 1]]
    return {
        "evaluated_users": evaluated,
        "rec_topk": rec_topk.tolist(),
        "metrics": {k: float(v) for k, v in result.items()},
        "per_user": per_user,
    }


def main() -> int:
    import recbole

    users = build_case()
    rb = recbole_eval(users)
    doc = {
        "description": ("Golden full-ranking metrics computed by RecBole's own evaluator "
                        "(recbole.evaluator.Collector + Evaluator; metrics Recall, NDCG, Precision, Hit) "
                        "on a synthetic ties-free case. Item ids are 0-based here; RecBole saw id+1 "
                        "(its id 0 is [PAD]). Train items are excluded from ranking (-inf), as RecBole's "
                        "trainer does with the history index."),
        "generator": "bench/peers/recbole/make_golden.py",
        "versions": {"recbole": recbole.__version__, "torch": torch.__version__, "numpy": np.__version__},
        "n_items": N_ITEMS,
        "ks": KS,
        "k_max": max(KS),
        "users": users,
        "recbole": rb,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes); {len(rb['evaluated_users'])} users evaluated")
    print(json.dumps({k: round(v, 6) for k, v in rb["metrics"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
