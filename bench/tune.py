"""Hyper-parameter search on the VALIDATION split only.

Samples configurations from a grid (seeded), trains each with `protocol: standard` (model
selection on the 10% validation split of train.txt), and picks the one with the best validation
Recall@20.  Test metrics are recorded for the record but never read by the selection.  The
search space, the budget and every trial are written to bench/results/tune-<dataset>-<model>.json.

    python -m bench.tune --dataset ml-100k --model jnskr --trials 24
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from pathlib import Path

SPACES = {
    "jnskr": {
        "jnskr.c0": [30, 100, 300],
        "jnskr.c1": [100, 600],
        "jnskr.keep_prob": [[0.8, 0.7], [0.6, 0.6], [0.9, 0.9]],
        "jnskr.mu": [0.01, 0.1],
        "train.lr": [0.05, 0.1],
        "jnskr.lambda_emb": [1.0e-5, 1.0e-3],
    },
    "lightgcn": {
        "lightgcn.negative_weight": [0.01, 0.03, 0.1, 0.3],
        "lightgcn.layers": [1, 2, 3],
        "lightgcn.keep_prob": [0.7, 1.0],
        "lightgcn.lambda_emb": [0.0, 1.0e-4],
        "train.lr": [0.05, 0.1, 0.2],
    },
    "enmf": {
        "enmf.negative_weight": [0.02, 0.05, 0.1, 0.2, 0.5],
        "enmf.keep_prob": [0.5, 0.7, 0.9],
        "train.lr": [0.05, 0.1],
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, help="registered name or path")
    ap.add_argument("--model", choices=sorted(SPACES), default="jnskr")
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0, help="seed of the sampling of the grid")
    ap.add_argument("--epochs", type=int, default=101)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="fixed overrides")
    ap.add_argument("--out", default=None)
    ap.add_argument("--space", default=None, help="JSON object replacing the model's default search space")
    args = ap.parse_args()

    from jnskr.api import Recommender
    from jnskr.config import build_config
    from jnskr.data import load_dataset

    space = json.loads(args.space) if args.space else SPACES[args.model]
    grid = [dict(zip(space, combo)) for combo in itertools.product(*space.values())]
    random.Random(args.seed).shuffle(grid)
    trials = grid[: args.trials]
    ds = load_dataset(args.dataset)
    name = Path(args.dataset).name
    out = Path(args.out or Path(__file__).parent / "results" / f"tune-{name}-{args.model}.json")
    records = []
    t_start = time.time()
    for n, params in enumerate(trials, 1):
        overrides = [f"model={args.model}", f"train.epochs={args.epochs}", "device=cpu", *args.sets]
        overrides += [f"{k}={json.dumps(v)}" for k, v in params.items()]
        cfg = build_config(args.preset, overrides=overrides)
        t0 = time.time()
        rec = Recommender(cfg).fit(ds)
        m = rec.metrics
        records.append({"params": params, "valid": m["valid"], "test": m["test"], "best_epoch": m["best_epoch"],
                        "seconds": round(time.time() - t0, 2), "epoch_mean_seconds": m.get("epoch_mean_seconds", m.get("seconds_per_epoch"))})
        print(f"[{n}/{len(trials)}] {params} valid R@20 {m['valid']['recall@20']:.4f} "
              f"(epoch {m['best_epoch']}, {time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
    best = max(records, key=lambda r: r["valid"]["recall@20"])
    result = {
        "dataset": name, "model": args.model, "selected_on": "valid recall@20", "space": space,
        "budget": {"trials": len(trials), "grid_size": len(grid), "sampling_seed": args.seed,
                   "max_epochs": args.epochs, "wall_seconds": round(time.time() - t_start, 1)},
        "fixed": args.sets, "preset": args.preset, "best": best, "trials": records,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"best_params": best["params"], "valid": best["valid"]["recall@20"],
                      "test_recall@20": best["test"]["recall@20"], "test_ndcg@20": best["test"]["ndcg@20"]}))


if __name__ == "__main__":
    main()
