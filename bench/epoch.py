"""Seconds per training epoch and peak memory, JNSKR and ENMF, at several batch sizes.

Datasets:
  amazon-book    the real KGAT Amazon-book interactions (../shared/data/amazon-book, or
                 $JNSKR_SHARED_DATA) with the item-entity links of JNSKR's kg_feat.npz.  That file
                 has no relation ids: every link is one relation `linked` (so R = 1 here, where
                 the full KG has 39).
  NAME or PATH   any registered dataset or folder (ml-100k, ../shared/data/kgcn-music), with its
                 preset's hyper-parameters
  synthetic-xS   Amazon-book's sizes times S (70,679·S users, 24,915·S items, 88,572·S tails,
                 39 relations, 652,514·S train pairs, 64 facts per item), for scaling.

Each configuration runs in a fresh subprocess (clean peak-RSS reading).  By default a whole
epoch is timed after a warm-up of 2 batches; `--max-batches N` times N batches and reports the
epoch time extrapolated from them (marked `extrapolated`).

    python -m bench.epoch                                   # CPU: x1 + amazon-book, b=256/1024/4096
    python -m bench.epoch --datasets synthetic-x1,synthetic-x2,synthetic-x4,synthetic-x8 \
        --models jnskr --batch-sizes 1024 --max-batches 10  # scaling
    python -m bench.epoch --datasets ml-100k,../shared/data/kgcn-music --batch-sizes 256 \
        --repeats 15 --name epoch-cpu-small                 # small datasets (median of 15 epochs)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import statistics
import time

from bench.common import SHARED_DATA, machine, peak_rss_mb, print_table, write_result


def load(name: str):
    if name == "amazon-book":
        from jnskr.data import load_dataset

        path = SHARED_DATA / "amazon-book"
        if not path.is_dir():
            raise SystemExit(f"{path} is absent: set JNSKR_SHARED_DATA")
        return load_dataset(str(path), format="kgat")
    if name.startswith("synthetic-x"):
        from jnskr.data.synthetic import amazon_book_like

        return amazon_book_like(float(name.removeprefix("synthetic-x")))
    from jnskr.data import load_dataset

    return load_dataset(name)  # a registered name (ml-100k) or a path


def run_one(args) -> dict:
    import torch

    from jnskr.config import build_config
    from jnskr.data.kg import build_item_kg
    from jnskr.models import ModelData, get
    from jnskr.training.trainer import Trainer, epoch_batches

    device = torch.device(args.device)
    t0 = time.perf_counter()
    ds = load(args.dataset)
    load_s = time.perf_counter() - t0
    from pathlib import Path

    from jnskr.config import preset_names

    preset = Path(args.dataset).name if Path(args.dataset).name in preset_names() else "amazon-book"
    cfg = build_config(preset, overrides=[f"model={args.model}", f"train.batch_size={args.batch_size}"])
    t0 = time.perf_counter()
    cls = get(args.model)
    ikg = build_item_kg(ds.kg, ds.n_items, ds.train.item_counts()) if ds.kg is not None and cls.uses_kg else None
    model = cls.build(cfg, ModelData(ds.n_users, ds.n_items, ds.train.item_counts(), ikg)).to(device)
    obj = model.objective(ds.train, ikg, cfg.seed)
    facts = ikg.n_facts if ikg is not None else 0
    build_s = time.perf_counter() - t0
    trainer = Trainer(model, obj, seed=cfg.seed, batch_size=args.batch_size, epochs=1)
    batches = epoch_batches(obj.n_units, args.batch_size, False, cfg.seed, 0, device)
    n_batches = len(batches)

    forward = obj
    if args.compile:
        forward = torch.compile(obj.__call__, dynamic=True)

    def step(units, epoch=0):
        trainer.optimizer.zero_grad(set_to_none=True)
        loss, _ = forward(units, epoch)
        loss.backward()
        trainer.optimizer.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    model.train()
    sync()
    t0 = time.perf_counter()
    for units in batches[:2]:  # warm-up (includes compilation with --compile)
        step(units)
    sync()
    warmup_s = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    timed = batches if not args.max_batches else batches[2 : 2 + args.max_batches]
    runs = []
    for rep in range(args.repeats):  # the median of several timed passes: small epochs are noisy
        sync()
        t0 = time.perf_counter()
        for units in timed:  # a new epoch number per pass: per-epoch work (dropout masks) is timed too
            step(units, rep + 1)
        sync()
        runs.append(time.perf_counter() - t0)
    secs = statistics.median(runs)
    per_batch = secs / max(len(timed), 1)
    out = {
        "dataset": args.dataset, "model": args.model, "batch_size": args.batch_size, "device": args.device,
        "users": ds.n_users, "items": ds.n_items, "train_pairs": ds.train.nnz, "kg_facts": facts,
        "batches_per_epoch": n_batches, "batches_timed": len(timed),
        "seconds_per_epoch": per_batch * n_batches, "extrapolated": bool(args.max_batches),
        "repeats": args.repeats, "seconds_per_epoch_min": min(runs) / max(len(timed), 1) * n_batches,
        "seconds_per_epoch_max": max(runs) / max(len(timed), 1) * n_batches,
        "ms_per_batch": per_batch * 1000, "load_seconds": load_s, "build_seconds": build_s,
        "compiled": bool(args.compile), "warmup_seconds": warmup_s,
        "peak_rss_mb": peak_rss_mb(),
    }
    if device.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="seconds per epoch and peak memory")
    ap.add_argument("--datasets", default="synthetic-x1,amazon-book")
    ap.add_argument("--models", default="jnskr,enmf")
    ap.add_argument("--batch-sizes", default="256,1024,4096")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=1, help="timed passes; seconds_per_epoch is their median")
    ap.add_argument("--max-batches", type=int, default=0)
    ap.add_argument("--compile", action="store_true", help="torch.compile the batch loss (compile time "
                    "reported apart as warmup_seconds)")
    ap.add_argument("--name", default=None, help="results file name (default epoch-<device>)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dataset", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args)))
        return
    rows = []
    for ds in args.datasets.split(","):
        for model in args.models.split(","):
            for bs in (int(b) for b in args.batch_sizes.split(",")):
                cmd = [sys.executable, "-m", "bench.epoch", "--one", "--dataset", ds, "--model", model, "--batch-size", str(bs),
                       "--device", args.device, "--max-batches", str(args.max_batches),
                       "--repeats", str(args.repeats)] + \
                    (["--compile"] if args.compile else [])
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"{ds} {model} b={bs}: failed\n{r.stderr[-2000:]}", file=sys.stderr)
                    continue
                rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
                print_table(rows[-1:], ["dataset", "model", "batch_size", "seconds_per_epoch", "peak_rss_mb"])
    cols = ["dataset", "model", "batch_size", "compiled", "batches_per_epoch", "seconds_per_epoch",
            "seconds_per_epoch_min", "extrapolated",
            "ms_per_batch", "warmup_seconds", "peak_rss_mb"] + (["peak_gpu_mb"] if args.device.startswith("cuda") else [])
    print()
    print_table(rows, cols, title=f"epoch benchmark on {args.device}")
    path = write_result(args.name or f"epoch-{args.device}", {"machine": machine(args.device), "results": rows})
    print(f"written {path}")


if __name__ == "__main__":
    main()
