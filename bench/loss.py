"""Efficient vs brute-force loss: time (forward + backward) as the number of users / entities grows.

The efficient CF loss costs O((M + B)·d² + n·d), its brute-force twin O(M·B·d); the KG loss
O((R + T + B)·d²) against O(B·R·T·d).  The ratio grows with M (resp. T).  Both sides are timed
in the same run, on the same random problem, after a warm-up.

    python -m bench.loss                      # M = 1k, 4k, 16k, 64k users (T likewise)
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import machine, print_table, write_result

from jnskr.losses import (
    nonsampling_cf_loss,
    nonsampling_cf_loss_bruteforce,
    nonsampling_kg_loss,
    nonsampling_kg_loss_bruteforce,
)


def _time(fn, reps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def cf_case(M: int, B: int, d: int, pos_per_item: int, reps: int) -> dict:
    g = torch.Generator().manual_seed(0)
    P = torch.randn(M, d, generator=g, requires_grad=True)
    Q = torch.randn(B, d, generator=g, requires_grad=True)
    h = torch.randn(d, generator=g, requires_grad=True)
    n = min(B * pos_per_item, M * B)
    key = torch.randperm(M * B, generator=g)[:n]
    pu, pi = key // B, key % B
    c = torch.rand(B, generator=g)

    def eff():
        nonsampling_cf_loss(P, Q, h, pu, pi, 1.0, c).backward()

    def brute():
        nonsampling_cf_loss_bruteforce(P, Q, h, pu, pi, 1.0, c).backward()

    te, tb = _time(eff, reps), _time(brute, reps)
    return {"loss": "cf", "size": M, "B": B, "d": d, "positives": n, "efficient_ms": te * 1e3,
            "bruteforce_ms": tb * 1e3, "ratio": tb / te}


def kg_case(T: int, R: int, B: int, d: int, facts_per_head: int, reps: int) -> dict:
    g = torch.Generator().manual_seed(1)
    E = torch.randn(B, d, generator=g, requires_grad=True)
    Z = torch.randn(R, d, generator=g, requires_grad=True)
    X = torch.randn(T, d, generator=g, requires_grad=True)
    n = B * facts_per_head
    key = torch.randperm(B * R * T, generator=g)[:n] if B * R * T < 2**24 else \
        torch.unique(torch.randint(0, B * R * T, (n,), generator=g))
    ph, pr, pt = key // (R * T), (key // T) % R, key % T
    w = torch.rand(B, generator=g)

    def eff():
        nonsampling_kg_loss(E, Z, X, ph, pr, pt, 1.0, w).backward()

    def brute():
        nonsampling_kg_loss_bruteforce(E, Z, X, ph, pr, pt, 1.0, w).backward()

    te, tb = _time(eff, reps), _time(brute, reps)
    return {"loss": "kg", "size": T, "B": B, "R": R, "d": d, "positives": int(len(key)), "efficient_ms": te * 1e3,
            "bruteforce_ms": tb * 1e3, "ratio": tb / te}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,4000,16000,64000")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--kg-batch", type=int, default=16, help="heads per KG case (brute force is B·R·T·d)")
    ap.add_argument("--relations", type=int, default=8)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for s in (int(x) for x in args.sizes.split(",")):
        rows.append(cf_case(s, args.batch, args.dim, 20, args.reps))
        print_table(rows[-1:], ["loss", "size", "efficient_ms", "bruteforce_ms", "ratio"])
    for s in (int(x) for x in args.sizes.split(",")):
        rows.append(kg_case(s, args.relations, args.kg_batch, args.dim, 30, args.reps))
        print_table(rows[-1:], ["loss", "size", "efficient_ms", "bruteforce_ms", "ratio"])
    print()
    print_table(rows, ["loss", "size", "B", "positives", "efficient_ms", "bruteforce_ms", "ratio"],
                title="efficient vs brute-force loss (forward + backward), size = users (cf) / tail entities (kg)")
    path = write_result("loss-cpu", {"machine": machine("cpu"), "args": vars(args), "results": rows})
    print(f"written {path}")


if __name__ == "__main__":
    main()
