"""Re-evaluate a RecBole model's test scores with jnskr's evaluator (project python).

    python bench/peers/recbole/crosscheck.py /work/shared/data/ml100k-kgat --format kgat \
        bench/peers/recbole/work/ml100k-kgat-BPR-s2020/test_scores.npz \
        bench/results/recbole/ml100k-kgat-BPR-s2020.json

run.py --dump-scores writes the .npz (scores in jnskr ids; RecBole's history items are -inf).
jnskr's `evaluate` then ranks them with its own protocol (exclude = the whole jnskr train set)
and the metrics are compared with RecBole's test metrics in the result JSON.  Agreement shows
that the converted split, RecBole's candidate sets and both metric implementations line up.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("dataset")
    p.add_argument("--format", default=None)
    p.add_argument("scores")
    p.add_argument("result")
    p.add_argument("--tol", type=float, default=1e-6)
    a = p.parse_args(argv)
    from jnskr.data import load_dataset
    from jnskr.evaluation import evaluate

    ds = load_dataset(a.dataset, format=a.format, cache=False)
    z = np.load(a.scores)
    users, scores = z["users"], z["scores"]
    full = np.full((ds.n_users, ds.n_items), -np.inf, dtype=np.float32)
    full[users, : scores.shape[1]] = scores

    class S:
        device = "cpu"

        def score(self, u):
            return torch.from_numpy(full[u.numpy()])

    res = evaluate(S(), ds.test, ds.train, ks=(10, 20, 40), k_max=100)
    rb = json.load(open(a.result))["test"]
    worst = 0.0
    for key, v in sorted(rb.items()):
        d = abs(res.metrics[key] - v)
        worst = max(worst, d)
        print(f"{key:14s} recbole {v:.8f}  jnskr {res.metrics[key]:.8f}  diff {d:.2e}")
    print(f"users: recbole-scored {len(users)}, jnskr-evaluated {res.n_users}; max |diff| {worst:.2e}")
    return 0 if worst <= a.tol and res.n_users == len(users) else 1


if __name__ == "__main__":
    sys.exit(main())
