"""Choose the `default` preset (the one `--data PATH` gets for data without a preset of its own)
from VALIDATION runs only: each candidate is trained with `protocol: standard` and model selection on
the 10% validation holdout of train; no refit and no test evaluation are run, so no test figure is
computed, let alone read.  One JSON per dataset: bench/results/tune-default-<dataset>.json with the
command, every candidate's overrides, its validation curve and its best validation metrics.

    nice -n 10 python scripts/tune_default.py ../shared/data/kgcn-music ../shared/data/ml100k-kgat
    python scripts/tune_default.py --summary        # the selection: bench/results/tune-default-summary.json

The selection rule: the highest mean validation Recall@20 over the datasets, checked against the
worst case (each candidate's share of the best candidate per dataset).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

#: candidate -> overrides of the shipped `default` preset (as it was before this selection)
CANDIDATES = {
    "paper": [],  # the Amazon-book (paper) values: keep_prob [0.8, 0.7], beta 0.5, lambda_emb 1e-5
    "small-c300": ["jnskr.keep_prob=[0.3,0.3]", "jnskr.beta=0.0", "jnskr.lambda_emb=0.01"],
    "small-c800": ["jnskr.keep_prob=[0.3,0.3]", "jnskr.beta=0.0", "jnskr.lambda_emb=0.01", "jnskr.c0=800"],
    "mid": ["jnskr.keep_prob=[0.5,0.5]", "jnskr.beta=0.0", "jnskr.lambda_emb=0.001"],
    "small-l01": ["jnskr.keep_prob=[0.3,0.3]", "jnskr.beta=0.0", "jnskr.lambda_emb=0.1"],
}


def run_candidate(ds, overrides: list[str], fixed: list[str]) -> dict:
    from jnskr import pipeline
    from jnskr.config import build_config
    from jnskr.saved import resolve_device
    from jnskr.threads import set_threads

    import torch

    cfg = build_config("default", overrides=[*fixed, *overrides])
    set_threads(cfg.threads, ds.train.nnz, ds.n_users + ds.n_items)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    prep = pipeline.prepare(cfg, ds)  # standard protocol: validation holdout of train
    model = pipeline.build(cfg, prep, device)
    t0 = time.perf_counter()
    trainer = pipeline.train(cfg, model, prep, pipeline.make_strategy(device), None, False, None)
    secs = time.perf_counter() - t0
    curve = [{"epoch": r["epoch"], "loss": r["loss"], "valid_recall@20": r["valid"]["recall@20"]}
             for r in trainer.history if "valid" in r]
    return {"overrides": overrides, "solver": cfg.train.solver, "valid": trainer.state.best_valid,
            "best_epoch": trainer.state.best_epoch, "epochs_run": trainer.state.epoch,
            "seconds": round(secs, 1), "curve": curve}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", help="dataset folders")
    ap.add_argument("--summary", action="store_true", help="write the selection from the recorded runs")
    ap.add_argument("--only", nargs="*", default=None, help="candidate names (default: all)")
    ap.add_argument("--set", dest="fixed", action="append", default=[], help="fixed overrides for every candidate")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args()

    if args.summary:
        summarize(Path(args.out))
        return
    from jnskr.data import load_dataset

    names = args.only or list(CANDIDATES)
    for path in args.paths:
        ds = load_dataset(path)
        out = Path(args.out) / f"tune-default-{Path(path).name}.json"
        result = {"command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]), "dataset": Path(path).name,
                  "selected_on": "valid recall@20 (protocol standard, validation holdout of train; test never run)",
                  "base_preset": "default (paper values, before this selection)", "fixed": args.fixed,
                  "candidates": {}}
        if out.exists():  # keep earlier candidates of the same dataset
            result["candidates"] = json.loads(out.read_text()).get("candidates", {})
        for name in names:
            print(f"{ds.name}: {name} ...", flush=True)
            res = run_candidate(ds, CANDIDATES[name], args.fixed)
            result["candidates"][name] = res
            print(f"  valid recall@20 {res['valid']['recall@20']:.4f} at epoch {res['best_epoch']} "
                  f"({res['seconds']} s)", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=1) + "\n")


def summarize(folder: Path) -> None:
    runs = {p.stem.removeprefix("tune-default-"): json.loads(p.read_text())
            for p in sorted(folder.glob("tune-default-*.json")) if not p.stem.endswith("summary")}
    names = [n for n in CANDIDATES if all(n in r["candidates"] for r in runs.values())]
    table = {}
    for n in names:
        vals = {d: r["candidates"][n]["valid"]["recall@20"] for d, r in runs.items()}
        share = {d: vals[d] / max(r["candidates"][m]["valid"]["recall@20"] for m in names) for d, r in runs.items()}
        table[n] = {"overrides": CANDIDATES[n], "valid_recall@20": vals, "mean": sum(vals.values()) / len(vals),
                    "worst_share_of_best": min(share.values())}
    chosen = max(table, key=lambda n: table[n]["mean"])
    out = {"command": "python scripts/tune_default.py --summary", "datasets": sorted(runs),
           "rule": "highest mean validation recall@20 over the datasets (protocol standard; test never run); "
                   "worst_share_of_best checks it is no dataset's loser",
           "candidates": table, "chosen": chosen,
           "chosen_is_best_worst_case": chosen == max(table, key=lambda n: table[n]["worst_share_of_best"])}
    (folder / "tune-default-summary.json").write_text(json.dumps(out, indent=1) + "\n")
    for n, t in sorted(table.items(), key=lambda kv: -kv[1]["mean"]):
        print(f"{n:12s} mean {t['mean']:.4f} worst share {t['worst_share_of_best']:.3f} "
              + " ".join(f"{d} {v:.4f}" for d, v in t["valid_recall@20"].items()))
    print("chosen:", chosen)


if __name__ == "__main__":
    main()
