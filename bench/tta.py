"""Time to accuracy, side by side in one process: jnskr (each solver) against implicit's ALS and BPR.

Every method trains on the whole training set with hyper-parameters chosen on the validation
split (jnskr: its preset; implicit: `bench/results/tta/peers/tune-<dataset>-<model>.json`), and
its test Recall@20 / NDCG@20 are measured after every epoch, sweep or iteration with jnskr's
evaluator (evaluation time excluded from the training seconds).  The output answers "what is the
best test Recall@20 reachable within T seconds of training" for T in 1, 5, 10, 30, 60, 300, 1000,
and plots test Recall@20 against training seconds.

    python -m bench.tta --dataset ml100k-kgat
    python -m bench.tta --dataset amazon-book --methods jnskr-als,enmf-als,implicit-als --max-epochs 40

Writes bench/results/tta/<dataset>.json and docs/img/tta-<dataset>.png.  Run it in a quiet window:
the CPU model and the load average at start and end are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
from bench.common import REPO, SHARED_DATA, machine, print_table, write_result  # noqa: E402

BUDGETS = (1, 5, 10, 30, 60, 300, 1000)
METHODS = ("jnskr-als", "jnskr-adagrad", "enmf-als", "enmf-adagrad", "implicit-als", "implicit-bpr")
PRESETS = {"ml100k-kgat": "ml100k-kgat", "kgcn-music": "kgcn-music", "amazon-book": "amazon-book"}


def jnskr_curve(ds, dataset: str, model: str, solver: str, max_epochs: int, threads: int | None,
                eval_every: int = 1) -> dict:
    """Train `model` with `solver` on all of train, test metrics after every epoch/sweep."""
    import torch

    from jnskr.config import build_config
    from jnskr.pipeline import Prepared, build, evaluate, make_trainer, resolve_device
    from jnskr.ids import IdMaps
    from jnskr.data.kg import build_item_kg
    from jnskr.models import get
    from jnskr.threads import set_threads

    cfg = build_config(PRESETS[dataset], overrides=[f"model={model}", f"train.solver={solver}",
                                                    f"train.epochs={max_epochs}", "device=cpu",
                                                    *([f"threads={threads}"] if threads else [])])
    set_threads(cfg.threads, ds.train.nnz, ds.n_users + ds.n_items)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    item_kg = None
    if get(model).uses_kg and ds.has_kg:
        item_kg = build_item_kg(ds.kg, ds.n_items, ds.train.item_counts(), cfg.data.kg_heads, cfg.data.inverse_relations)
    prep = Prepared(ds, ds.train, None, item_kg, IdMaps.from_dataset(ds, item_kg))
    m = build(cfg, prep, resolve_device("cpu"))
    points, skipped = [], []
    setup = time.perf_counter() - t0

    def on_epoch(tr, record):
        if record["epoch"] % eval_every and record["epoch"] != max_epochs:
            skipped.append(record["seconds"])  # trained, not evaluated: its time counts at the next point
            return
        record = {**record, "seconds": record["seconds"] + sum(skipped)}
        skipped.clear()
        t = time.perf_counter()
        metrics = evaluate(m, cfg, ds.test, [ds.train])
        points.append({"iteration": record["epoch"], "train_seconds": None, "epoch_seconds": record["seconds"],
                       "eval_seconds": time.perf_counter() - t,
                       "metrics": {k: metrics[k] for k in ("recall@20", "ndcg@20")}})

    tr = make_trainer(cfg, m, ds.train, item_kg, max_epochs, None, None, None)
    tr.on_epoch_end = on_epoch
    wall0 = time.perf_counter()
    tr.fit()
    total = setup
    for p in points:  # cumulative training seconds: set-up + the epochs' own time
        total += p["epoch_seconds"]
        p["train_seconds"] = total
    return {"method": f"{model}-{solver}", "preset": PRESETS[dataset], "threads": torch.get_num_threads(),
            "setup_seconds": setup, "wall_seconds": time.perf_counter() - wall0 + setup, "points": points}


def implicit_curve(ds, dataset: str, model: str, max_iterations: int, threads: int, eval_every: int = 1) -> dict:
    from bench.peers.implicit.peer import fit_curve, make_eval_fn

    tune = json.loads((HERE / "results" / "tta" / "peers" / f"tune-{dataset}-{model}.json").read_text())
    hp = dict(tune["chosen"]["hparams"] if "chosen" in tune else tune["best"]["hparams"])
    iters = min(max_iterations, int(hp.get("iterations", max_iterations)) * 2)
    hp["iterations"] = iters
    curve = fit_curve(model, hp, ds.train, make_eval_fn(ds.test, [ds.train]),
                      sorted(set(range(eval_every, iters + 1, eval_every)) | {iters}), threads=threads)
    d = curve.to_dict()
    return {"method": f"implicit-{model}", "hparams": hp, "threads": threads, "setup_seconds": curve.prep_seconds,
            "points": [{"iteration": p["iteration"], "train_seconds": p["train_seconds"] + curve.prep_seconds,
                        "eval_seconds": p["eval_seconds"], "metrics": p["metrics"]} for p in d["points"]]}


def reachable(points: list[dict], budget: float, key: str = "recall@20") -> float | None:
    """The best test `key` among the checkpoints reached within `budget` training seconds."""
    vals = [p["metrics"][key] for p in points if p["train_seconds"] <= budget]
    return max(vals) if vals else None


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for c in result["curves"]:
        xs = [p["train_seconds"] for p in c["points"]]
        ys = [p["metrics"]["recall@20"] for p in c["points"]]
        ax.plot(xs, ys, marker=".", label=c["method"])
    ax.set_xscale("log")
    ax.set_xlabel("training seconds (log scale; evaluation excluded)")
    ax.set_ylabel("test Recall@20")
    ax.set_title(f"time to accuracy on {result['dataset']} ({result['machine'].get('cpu', '?')})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, choices=sorted(PRESETS))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--max-epochs", type=int, default=60, help="epochs / sweeps of jnskr's curves")
    ap.add_argument("--max-iterations", type=int, default=60, help="cap on implicit's iterations / epochs")
    ap.add_argument("--threads", type=int, default=None, help="jnskr threads (default: its own choice)")
    ap.add_argument("--peer-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--eval-every", type=int, default=1, help="test evaluation every N epochs / iterations "
                    "(large data: an Amazon-book evaluation costs seconds; the last one is always evaluated)")
    args = ap.parse_args()

    from jnskr.data import load_dataset

    load0 = os.getloadavg()[0]
    ds = load_dataset(str(SHARED_DATA / args.dataset), format="kgat")
    curves = []
    for method in args.methods.split(","):
        name, _, solver = method.partition("-")
        print(f"{args.dataset}: {method} ...", file=sys.stderr, flush=True)
        if name == "implicit":
            curves.append(implicit_curve(ds, args.dataset, solver, args.max_iterations, args.peer_threads,
                                         args.eval_every))
        else:
            curves.append(jnskr_curve(ds, args.dataset, name, solver, args.max_epochs, args.threads,
                                      args.eval_every))
    table = [{"method": c["method"], **{f"T={t}s": reachable(c["points"], t) for t in BUDGETS},
              "best": max(p["metrics"]["recall@20"] for p in c["points"]),
              "seconds_to_best": min(p["train_seconds"] for p in c["points"]
                                     if p["metrics"]["recall@20"] == max(q["metrics"]["recall@20"] for q in c["points"]))}
             for c in curves]
    result = {"dataset": args.dataset, "budgets_seconds": list(BUDGETS), "table": table, "curves": curves,
              "machine": machine(), "load_average_1min_start": load0, "load_average_1min_end": os.getloadavg()[0],
              "note": "best test Recall@20 among checkpoints reached within T training seconds (evaluation "
                      "excluded); every method trains on all of train with validation-chosen hyper-parameters"}
    out = write_result(f"tta/{args.dataset}", result)
    plot(result, REPO / "docs" / "img" / f"tta-{args.dataset}.png")
    print_table([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in table],
                list(table[0]), title=f"best test Recall@20 within T seconds, {args.dataset}")
    print(f"written {out}")


if __name__ == "__main__":
    main()
