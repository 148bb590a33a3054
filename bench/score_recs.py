"""Score a recommendations file (`jnskr recommend RUN --all --k 100 --output recs.csv`) on a
dataset's test split: Recall@K and NDCG@K (standard and legacy) computed from the file alone, so a
figure can be checked end to end from what a user would get.

    python -m bench.score_recs recs.csv --data ../shared/data/ml100k-kgat --format kgat
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recs", type=Path)
    ap.add_argument("--data", required=True)
    ap.add_argument("--format", default=None)
    ap.add_argument("--ks", default="10,20,40")
    args = ap.parse_args()

    from jnskr.data import load_dataset
    from jnskr.evaluation.metrics import metric_sums

    ds = load_dataset(args.data, format=args.format)
    users, items = ds.user_index(), ds.item_index()
    ranked: dict[int, list[int]] = {}
    with open(args.recs, newline="") as f:
        for row in csv.DictReader(f):
            ranked.setdefault(users[row["user"]], []).append((int(row["rank"]), items[row["item"]]))
    k_max = max(len(v) for v in ranked.values())
    ks = [int(k) for k in args.ks.split(",")]
    evaluated = [u for u in range(ds.n_users) if len(ds.test.row(u)) > 0]
    hits = torch.zeros(len(evaluated), k_max, dtype=torch.bool)
    n_test = torch.zeros(len(evaluated), dtype=torch.long)
    for r, u in enumerate(evaluated):
        test = set(ds.test.row(u).tolist())
        n_test[r] = len(test)
        lst = [i for _, i in sorted(ranked.get(u, []))]
        hits[r, : len(lst)] = torch.tensor([i in test for i in lst], dtype=torch.bool)
    sums = metric_sums(hits, n_test, ks)
    n = float(sums.pop("n_users"))
    out = {k: float(v) / n for k, v in sums.items()}
    out["n_users"] = int(n)
    out["list_length"] = k_max
    json.dump(out, sys.stdout, indent=1)
    print()
    missing = [u for u in evaluated if u not in ranked]
    if missing:
        print(f"warning: {len(missing)} test users have no recommendations in {args.recs}", file=sys.stderr)


if __name__ == "__main__":
    main()
