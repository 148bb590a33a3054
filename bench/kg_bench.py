"""Tuning and benchmark runs of `jnskr kg` (selection on validation only).

    python -m bench.kg_bench tune --dataset umls --model complex --grid loss.neg_total=0.5,1,2 \
        --grid reg.weight=0,0.01 --set train.threads=1 --tag round1
        -> bench/results/kg/tune-umls-complex-round1.json (valid metrics only; test never looked at)

    python -m bench.kg_bench run --dataset umls --model complex [--set k=v ...]
        -> bench/results/kg/umls-complex.json (config, seed, commit, CPU, load, seconds to best,
           valid and test metrics under both unseen-entity rules)

Datasets are read from the jnskr data cache (`jnskr.kg.fetch`; add --base-url file:///... offline).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from jnskr.kg.config import build_config, preset_for
from jnskr.kg.datasets import fetch, load_triples, resolve
from jnskr.kg.run import cpu_model
from jnskr.kg.trainer import fit
from jnskr.runs import git_commit, write_json

RESULTS = Path(__file__).resolve().parent / "results" / "kg"


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _machine() -> dict:
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "commit": git_commit(), "loadavg_start": _load()}


def _data(args):
    if resolve(args.dataset) is not None and args.base_url:
        fetch(args.dataset, base_url=args.base_url)
    return load_triples(args.dataset)


def tune(args) -> None:
    data = _data(args)
    keys = [g.split("=", 1)[0] for g in args.grid]
    values = [g.split("=", 1)[1].split(",") for g in args.grid]
    preset = args.preset or preset_for(data.name)
    out = RESULTS / f"tune-{data.name}-{args.model}-{args.tag}.json"
    report = {"command": "python -m bench.kg_bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]), "dataset": data.name,
              "model": args.model, "preset": preset, "fixed": args.set, "grid": dict(zip(keys, values)),
              "selection": "validation MRR, filtered, unseen entities kept", **_machine(), "trials": []}
    for combo in itertools.product(*values):
        sets = list(args.set) + [f"{k}={v}" for k, v in zip(keys, combo)]
        cfg = build_config(preset, model=args.model, overrides=sets)
        t0 = time.perf_counter()
        res = fit(cfg, data)
        m = res.metrics
        trial = {"set": dict(zip(keys, combo)), "valid": m["valid"], "best_epoch": m["best_epoch"],
                 "epochs_run": m["epochs_run"], "seconds_to_best": m["seconds_to_best"],
                 "seconds": round(time.perf_counter() - t0, 2), "stopped": m["stopped"]}
        report["trials"].append(trial)
        print(f"{trial['set']}  valid MRR {m['valid']['kept']['mrr']:.4f}  H@10 {m['valid']['kept']['hits@10']:.4f}"
              f"  epoch {m['best_epoch']}/{m['epochs_run']}  {trial['seconds']:.1f}s", flush=True)
        best = max(report["trials"], key=lambda t: t["valid"]["kept"]["mrr"])
        report["best"] = {"set": best["set"], "valid_mrr": best["valid"]["kept"]["mrr"]}
        report["loadavg_end"] = _load()
        write_json(out, report)
    print(f"best {report['best']} -> {out}")


def run(args) -> None:
    data = _data(args)
    preset = args.preset or preset_for(data.name)
    cfg = build_config(preset, model=args.model, overrides=args.set)
    t0 = time.perf_counter()
    res = fit(cfg, data)
    wall = time.perf_counter() - t0
    m = res.metrics
    name = f"{data.name}-{args.model}" + (f"-{args.tag}" if args.tag else "")
    report = {"command": "python -m bench.kg_bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]), "dataset": data.name,
              "model": args.model, "preset": preset, "config": cfg.model_dump(mode="json"), "seed": cfg.seed,
              **_machine(), "torch_threads": cfg.train.threads or torch.get_num_threads(),
              "seconds_to_best": m["seconds_to_best"], "seconds_train": m["seconds_train"],
              "seconds_total": round(wall, 2), "best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"],
              "stopped": m["stopped"], "valid": m["valid"], "test": m["test"], "loadavg_end": _load(),
              "history": res.history}
    if args.rss:
        import resource

        report["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    write_json(RESULTS / f"{name}.json", report)
    for split in ("test", "valid"):
        for rule in ("kept", "dropped"):
            x = m[split][rule]
            print(f"{split:5s} {rule:7s} n={x['triples']:6d}  MRR {x['mrr']:.4f}  H@1 {x['hits@1']:.4f}  "
                  f"H@3 {x['hits@3']:.4f}  H@10 {x['hits@10']:.4f}")
    print(f"best epoch {m['best_epoch']}/{m['epochs_run']}, {m['seconds_to_best']:.1f} s to best, "
          f"{wall:.1f} s total -> {RESULTS / (name + '.json')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("tune", "run"):
        s = sub.add_parser(name)
        s.add_argument("--dataset", required=True)
        s.add_argument("--model", required=True)
        s.add_argument("--preset")
        s.add_argument("--set", action="append", default=[])
        s.add_argument("--tag", default="")
        s.add_argument("--base-url", default=None)
        s.add_argument("--verbose", action="store_true")
        if name == "tune":
            s.add_argument("--grid", action="append", default=[])
        else:
            s.add_argument("--rss", action="store_true")
    args = p.parse_args()
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    (tune if args.cmd == "tune" else run)(args)


if __name__ == "__main__":
    main()
