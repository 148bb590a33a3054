"""Bytes communicated per training step: jnskr's Gram-sharing design vs a plain gradient all-reduce.

Starts W gloo processes on this machine (CPU), trains a few global batches of JNSKR on the
Amazon-book-sized synthetic dataset, and reports, per step and per rank, the bytes jnskr's
collectives moved (2 d×d Gram all-reduces + sparse row all_gathers + small parameters) next to
the bytes a plain all-reduce of every gradient would move (every parameter, every step).

    python -m bench.dist --world 2 --scale 1 --steps 3 --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time

import torch
import torch.multiprocessing as mp

from bench.common import machine, print_table, write_result


def _worker(rank, world, port, args, queue):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from jnskr.config import build_config
    from jnskr.data.kg import build_item_kg
    from jnskr.data.synthetic import amazon_book_like
    from jnskr.parallel import DistStrategy, dense_allreduce_bytes
    from jnskr.models import JNSKR
    from jnskr.models.jnskr.objective import JNSKRObjective
    from jnskr.training.trainer import Trainer, epoch_batches

    dist.init_process_group("gloo")
    ds = amazon_book_like(args.scale)
    cfg = build_config("amazon-book")
    ikg = build_item_kg(ds.kg, ds.n_items, ds.train.item_counts())
    model = JNSKR(ds.n_users, ds.n_items, ikg, cfg.jnskr)
    comm = DistStrategy()
    obj = JNSKRObjective(model, ds.train, ikg, cfg.jnskr, cfg.seed)
    tr = Trainer(model, obj, seed=cfg.seed, batch_size=args.batch_size, epochs=1)
    batches = epoch_batches(obj.n_units, args.batch_size, False, cfg.seed, 0)[: args.steps]
    model.train()
    per_step = []
    t0 = time.perf_counter()
    for units in batches:
        before = comm.bytes_sent
        tr.optimizer.zero_grad(set_to_none=True)
        loss, _ = obj(comm.split_batch(units), 0, comm)
        loss.backward()
        comm.finish_grads(model)
        tr.optimizer.step()
        per_step.append(comm.bytes_sent - before)
    secs = (time.perf_counter() - t0) / len(batches)
    if rank == 0:
        d = cfg.jnskr.embed_dim
        queue.put({"world": world, "scale": args.scale, "batch_size": args.batch_size, "users": ds.n_users,
                   "items": ds.n_items, "tails": ikg.n_tails, "d": d,
                   "gram_bytes_per_step": 2 * d * d * 4,
                   "jnskr_bytes_per_step_per_rank": sum(per_step) / len(per_step),
                   "dense_allreduce_bytes_per_step": dense_allreduce_bytes(model),
                   "seconds_per_step": secs})
    dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--scales", default="0.25,1")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    rows = []
    for scale in (float(s) for s in args.scales.split(",")):
        args.scale = scale
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        q = mp.get_context("spawn").SimpleQueue()
        mp.spawn(_worker, args=(args.world, port, args, q), nprocs=args.world, join=True)
        row = q.get()
        row["ratio"] = row["dense_allreduce_bytes_per_step"] / row["jnskr_bytes_per_step_per_rank"]
        rows.append(row)
        print(json.dumps(row))
    print()
    print_table(rows, ["world", "scale", "users", "tails", "gram_bytes_per_step", "jnskr_bytes_per_step_per_rank",
                       "dense_allreduce_bytes_per_step", "ratio", "seconds_per_step"],
                title="bytes communicated per training step (gloo, CPU)")
    path = write_result("dist-cpu", {"machine": machine("cpu"), "results": rows})
    print(f"written {path}")


if __name__ == "__main__":
    main()
