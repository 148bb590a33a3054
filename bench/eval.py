"""Full-ranking evaluation speed: users/s at Amazon-book scale.

A JNSKR model (random weights: speed does not depend on them) on the Amazon-book-sized synthetic
dataset scores every item for every test user, masks their train items, takes the top 100 and
computes all metrics.  Side by side, in the same run: the bare matmul and matmul + topk over the
same users, i.e. the floor the evaluator sits on; on CPU also the evaluator with each GEMM backend
(`jnskr.ops.cpu_gemm`: torch's MKL, numpy's OpenBLAS), with the number of users whose top-100 lists
differ between the two (ties aside they are identical) and the largest metric difference.

    python -m bench.eval [--device cuda] [--batch-sizes 256,1024,4096]
"""

from __future__ import annotations

import argparse
import os
import time

import jnskr  # noqa: F401  (first: it quiets OpenBLAS's idle threads before numpy loads, as the CLI does)
import numpy as np
import torch

from bench.common import machine, print_table, write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-sizes", default="1024")
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()

    from jnskr.config import build_config
    from jnskr.data.kg import build_item_kg
    from jnskr.data.synthetic import amazon_book_like
    from jnskr.evaluation import evaluate
    from jnskr.models import JNSKR
    from jnskr.ops import cpu_gemm as gemm

    device = torch.device(args.device)
    ds = amazon_book_like(args.scale)
    ikg = build_item_kg(ds.kg, ds.n_items, ds.train.item_counts())
    model = JNSKR(ds.n_users, ds.n_items, ikg, build_config("amazon-book").jnskr).to(device).eval()
    users = np.flatnonzero(ds.test.user_counts() > 0)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    rows, per_backend = [], {}
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        sync()
        t0 = time.perf_counter()
        model.prepare_scoring()  # every q_v once: attention over all items
        sync()
        prep = time.perf_counter() - t0
        evaluate(model, ds.test, ds.train, batch_size=bs, users=users[:bs])  # warm-up
        sync()
        t0 = time.perf_counter()
        res = evaluate(model, ds.test, ds.train, batch_size=bs)
        sync()
        t_eval = time.perf_counter() - t0
        ut = torch.as_tensor(users, device=device)
        with torch.no_grad():
            sync()
            t0 = time.perf_counter()
            for lo in range(0, len(ut), bs):
                model.score(ut[lo : lo + bs])
            sync()
            t_mm = time.perf_counter() - t0
            t0 = time.perf_counter()
            for lo in range(0, len(ut), bs):
                torch.topk(model.score(ut[lo : lo + bs]), 100, dim=1)
            sync()
            t_mmtopk = time.perf_counter() - t0
        row = {"batch_size": bs, "users": res.n_users, "items": ds.n_items, "gemm": gemm(), "prepare_q_s": prep,
               "evaluate_s": t_eval, "users_per_s": res.n_users / t_eval, "matmul_only_s": t_mm,
               "matmul_topk_only_s": t_mmtopk, "evaluator_overhead": t_eval / t_mmtopk - 1}
        if device.type == "cpu":  # the evaluator with each GEMM backend, back to back
            for backend in ("torch", "numpy"):
                os.environ["JNSKR_CPU_GEMM"] = backend
                gemm.cache_clear()
                t0 = time.perf_counter()
                r = evaluate(model, ds.test, ds.train, batch_size=bs)
                row[f"evaluate_{backend}_gemm_s"] = time.perf_counter() - t0
                per_backend[backend] = r
            os.environ.pop("JNSKR_CPU_GEMM")
            gemm.cache_clear()
            a, b = per_backend["torch"], per_backend["numpy"]
            row["max_metric_diff_between_gemms"] = max(abs(a.metrics[k] - b.metrics[k]) for k in a.metrics)
        rows.append(row)
        print_table(rows[-1:], list(rows[-1]))
    print()
    print_table(rows, list(rows[0]), title=f"full-ranking evaluation on {args.device} (top-100, all metrics)")
    path = write_result(f"eval-{args.device}", {"machine": machine(args.device), "dataset": ds.name, "results": rows})
    print(f"written {path}")


if __name__ == "__main__":
    main()
