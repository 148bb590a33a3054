"""Side-by-side runs of jnskr's models and JNSKR's ablations, several seeds, one JSON per run.

Every run trains under `protocol: standard` (selection on the validation split) and writes
bench/results/runs/<dataset>/<variant>-s<seed>.json with test/valid metrics (both NDCG
variants), the learning curve (validation Recall@20 vs epoch and training seconds), per-user test
Recall@20/NDCG@20 (for paired significance tests) and KGAT's sparsity groups.
`python -m bench.report` turns them into docs/results.md.

    python -m bench.compare --dataset ml-100k --seeds 1,2,3
    python -m bench.compare --dataset ../shared/data/kgcn-music --variants JNSKR,ENMF --seeds 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.common import RESULTS, machine, write_run

#: variant -> overrides on top of the dataset's preset (the preset holds the tuned JNSKR/ENMF values)
VARIANTS: dict[str, list[str]] = {
    "JNSKR": ["model=jnskr"],
    "ENMF": ["model=enmf"],
    "BPR-MF": ["model=bpr", "train.optimizer=adam", "train.lr=0.001", "train.batch_size=2048"],
    "Popularity": ["model=popularity"],
    "JNSKR-sampled": ["model=jnskr_sampled"],
    "JNSKR (no KG)": ["model=jnskr", "data.use_kg=false"],
    "JNSKR (mean)": ["model=jnskr", "jnskr.attention=mean"],
    "JNSKR (legacy KG weights)": ["model=jnskr", "jnskr.kg_neg_weight=legacy"],
    "JNSKR (paper attention)": ["model=jnskr", "jnskr.attention=paper"],
}
MAIN = ["JNSKR", "ENMF", "BPR-MF", "Popularity", "JNSKR-sampled"]


def run_variant(ds, name: str, variant: str, seed: int, preset: str, extra: list[str], protocol: str) -> dict:
    from jnskr.api import Recommender
    from jnskr.config import build_config
    from jnskr.evaluation import evaluate
    from jnskr.evaluation.groups import group_metrics, sparsity_groups

    overrides = VARIANTS[variant] + [f"seed={seed}", f"train.protocol={protocol}", "device=cpu"] + extra
    cfg = build_config(preset, overrides=overrides)
    t0 = time.perf_counter()
    rec = Recommender(cfg).fit(ds)
    wall = time.perf_counter() - t0
    m = rec.metrics
    curve, secs = [], 0.0
    key = "test_recall@20" if protocol == "paper" else "valid_recall@20"
    for h in (rec.trainer.history if rec.trainer is not None else []):
        secs += h["seconds"]
        if "valid" in h:
            curve.append({"epoch": h["epoch"], "seconds": round(secs, 4), key: h["valid"]["recall@20"]})
    to_best = next((c["seconds"] for c in curve if c["epoch"] == m["best_epoch"]), None)
    rec.model.eval()
    rec.model.prepare_scoring()
    res = evaluate(rec.model, ds.test, [ds.train], ks=cfg.eval.ks, k_max=cfg.eval.k_max, return_per_user=True)
    groups = sparsity_groups(ds.train, ds.test)
    gm = group_metrics(res, groups)
    epoch_secs = [h["seconds"] for h in (rec.trainer.history if rec.trainer is not None else [])]
    return {
        "framework": "jnskr", "dataset": name, "model": variant, "seed": seed, "protocol": protocol,
        "overrides": overrides, "preset": preset, "machine": machine("cpu"),
        "test": m["test"], "valid": m["valid"], "best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"],
        "seconds_per_epoch": float(np.mean(epoch_secs)) if epoch_secs else 0.0,
        "seconds_per_epoch_note": "training only, without the evaluations",
        "train_seconds": m["train_seconds"], "wall_seconds": round(wall, 2), "seconds_to_best_epoch": to_best,
        "curve": curve,
        "per_user": {"users": res.users.tolist(), "recall@20": res.per_user["recall@20"].tolist(),
                     "ndcg@20": res.per_user["ndcg@20"].tolist()},
        "groups": {"edges": [list(map(int, e)) for e in groups.edges],
                   "n_users": [int(gm[g]["n_users"]) for g in sorted(gm)],
                   "recall@20": [float(gm[g]["metrics"]["recall@20"]) for g in sorted(gm)]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--preset", default=None, help="default: the preset named like the dataset, else default")
    ap.add_argument("--protocol", default="standard", choices=["standard", "paper"])
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--skip-existing", action="store_true")
    args = ap.parse_args()

    from jnskr.config import preset_names
    from jnskr.data import load_dataset

    name = Path(args.dataset).name
    preset = args.preset or (name if name in preset_names() else "default")
    ds = load_dataset(args.dataset)
    for variant in args.variants.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            tag = variant.replace(" ", "_").replace("(", "").replace(")", "")
            suffix = "" if args.protocol == "standard" else "-paper"
            rel = f"runs/{name}/{tag}{suffix}-s{seed}"
            if args.skip_existing and (RESULTS / f"{rel}.json").exists():
                continue
            r = run_variant(ds, name, variant, seed, preset, args.sets, args.protocol)
            write_run(rel, r)
            print(json.dumps({"variant": variant, "seed": seed, "recall@20": round(r["test"]["recall@20"], 4),
                              "ndcg@20": round(r["test"]["ndcg@20"], 4), "best_epoch": r["best_epoch"],
                              "s/epoch": round(r["seconds_per_epoch"], 3)}), flush=True)


if __name__ == "__main__":
    main()
