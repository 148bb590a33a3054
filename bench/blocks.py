"""Large d, cheap: one ALS sweep of ENMF at the iALS point against one iteration of implicit's ALS,
side by side in one process, for d from 32 to 1024.

ENMF's row blocks are solved exactly (`train.block_solver: cholesky`) and by 3 warm-started
conjugate-gradient steps (`cg`, implicit's default); implicit runs its CG solver.  Each figure is
the median of `--repeat` sweeps/iterations after one warm-up, with the same thread count on both
sides.

    python -m bench.blocks --dataset ml100k-kgat --threads 1

Writes bench/results/blocks-<dataset>.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
from bench.common import SHARED_DATA, machine, print_table, write_result  # noqa: E402

DIMS = [32, 64, 128, 256, 512, 1024]


def ours(train, d: int, method: str, repeat: int) -> float:
    from jnskr.models.mf import ENMF, ENMFConfig

    cfg = ENMFConfig(embed_dim=d, h="fixed", keep_prob=1.0, negative_weight=1.0, alpha=9.0, reg=30.0, init_std=0.01)
    m = ENMF(train.n_users, train.n_items, cfg, seed=1)
    sw = m.block_sweeps(train, None, 256, method, 3)
    sw.sweep(0)
    times = []
    for e in range(repeat):
        t = time.perf_counter()
        sw.sweep(e + 1)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def theirs(train, d: int, threads: int, repeat: int) -> float:
    from bench.peers.implicit.peer import make_model, to_csr
    from threadpoolctl import threadpool_limits

    csr = to_csr(train)
    with threadpool_limits(1, "blas"):
        model = make_model("als", {"factors": d, "regularization": 30.0, "alpha": 10.0, "iterations": repeat + 1},
                           threads=threads)
        times = []

        def cb(iteration, elapsed, *_):
            times.append(elapsed)

        model.fit(csr, show_progress=False, callback=cb)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml100k-kgat")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dims", default=",".join(map(str, DIMS)))
    ap.add_argument("--exact-up-to", type=int, default=256, help="largest d for the exact (Cholesky) solve")
    args = ap.parse_args()

    import torch

    from jnskr.data import load_dataset

    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    ds = load_dataset(str(SHARED_DATA / args.dataset), format="kgat", log_warnings=False)
    rows = []
    for d in map(int, args.dims.split(",")):
        imp = theirs(ds.train, d, args.threads, args.repeat)
        cg = ours(ds.train, d, "cg", args.repeat)
        exact = ours(ds.train, d, "cholesky", args.repeat) if d <= args.exact_up_to else None
        rows.append({"d": d, "implicit_s": round(imp, 4), "jnskr_cg_s": round(cg, 4),
                     "jnskr_exact_s": None if exact is None else round(exact, 4),
                     "cg_over_implicit": round(cg / imp, 2),
                     "exact_over_cg": None if exact is None else round(exact / cg, 1)})
        print(rows[-1], file=sys.stderr, flush=True)
    result = {"dataset": args.dataset, "threads": args.threads, "repeat": args.repeat, "rows": rows,
              "what": "seconds per ALS sweep/iteration (users + items), median after a warm-up; ENMF at the iALS "
                      "point (h fixed, c- = 1, alpha 9 = implicit's 10, reg 30) vs implicit's CG ALS",
              "machine": machine(), "load_average_1min_start": load0, "load_average_1min_end": os.getloadavg()[0]}
    out = write_result(f"blocks-{args.dataset}", result)
    print_table(rows, list(rows[0]), title=f"seconds per sweep, {args.dataset}, {args.threads} thread(s)")
    print(f"written {out}")


if __name__ == "__main__":
    main()
