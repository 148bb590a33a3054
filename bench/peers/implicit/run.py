"""Train the validation-selected implicit ALS / BPR on the full train set and test it.

    python bench/peers/implicit/run.py ml100k-kgat --model als                   # curve + test
    /usr/bin/time -v python bench/peers/implicit/run.py ml100k-kgat --model als --whole-process
    python bench/peers/implicit/run.py ml100k-kgat --model als --check           # timing method check

Hyper-parameters come from ``bench/results/tta/peers/tune-<dataset>-<model>.json`` ("chosen",
selected on validation by `tune.py`); ``--set key=value`` overrides one (the result then says so).

Default mode: one `peer.fit_curve` run on ``ds.train`` with test metrics (jnskr's evaluator, every
user with a test item, train items excluded) after every ALS iteration / at BPR's checkpoints up to
the selected count (amazon-book: `SPARSE`), then a plain `fit` (no callback) of the same
configuration for its fit time.
Writes ``bench/results/tta/peers/<dataset>-<model>.json``.

``--whole-process``: what a user's script does and nothing else: imports, load the data, build the
CSR, fit, evaluate all test users; prints one JSON line with wall seconds measured from
``time.perf_counter()`` taken before any import to the end (add the interpreter's own start-up,
~0.02 s, for the `/usr/bin/time` figure).  ``--save`` also writes ``<dataset>-<model>-whole.json``.

``--check``: trains with evaluation at every checkpoint and a fresh ``fit(iterations=k)`` with the
same seed, single-threaded, and verifies that the factors are identical (evaluating inside the
callback does not change the training), then prints and saves that as ``check-<dataset>-<model>``.
"""

import time

_T0 = time.perf_counter()  # before any other import: the whole-process clock starts here

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
OUT = REPO / "bench" / "results" / "tta" / "peers"
DATA = Path(os.environ.get("JNSKR_SHARED_DATA", REPO.parent / "shared" / "data"))
BPR_CHECKPOINTS = [1, 2, 3, 5, 7, 10, 15, 20, 25, 30, *range(40, 1001, 10)]


def chosen_hparams(dataset: str, model: str, overrides: list[str]) -> tuple[dict, dict]:
    """(hparams with the selected `iterations`, the tune file's "chosen" entry) plus `--set` overrides."""
    tune = json.loads((OUT / f"tune-{dataset}-{model}.json").read_text())
    hp = dict(tune["chosen"]["hparams"])
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in hp and key not in ("use_cg", "cg_steps", "verify_negative_samples"):
            raise SystemExit(f"--set {item}: unknown key (have {sorted(hp)})")
        hp[key] = type(hp.get(key, 0.0))(json.loads(value)) if key in hp else json.loads(value)
    return hp, tune["chosen"]


#: amazon-book: a test pass over its 70k users takes ~20 s, so its curve has fewer points
SPARSE = {"als": [1, 2, 4, 8, 15, 20, 30], "bpr": [10, 25, 50, 100, 150, 200, 300]}


def curve_checkpoints(model: str, iterations: int, sparse: bool = False) -> list[int]:
    """Every ALS iteration, BPR's tuning checkpoints (`SPARSE` for a big dataset), up to and
    including the selected count."""
    grid = SPARSE[model] if sparse else (range(1, iterations + 1) if model == "als" else BPR_CHECKPOINTS)
    return sorted({c for c in grid if c <= iterations} | {iterations})


def whole_process(args, hp: dict) -> dict:
    """Load, fit, evaluate all users; seconds of each phase and of everything since `_T0`."""
    sys.path.insert(0, str(HERE))
    import peer
    from jnskr.data import load_dataset
    from jnskr.evaluation import evaluate

    t_load = time.perf_counter()
    ds = load_dataset(DATA / args.dataset, format="kgat", cache=False)
    t_fit = time.perf_counter()
    model = peer.fit(args.model, hp, ds.train, args.threads, blas_threads=args.blas_threads)
    t_eval = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)
    res = evaluate(peer.Scorer.from_model(model), ds.test, [ds.train], ks=(10, 20, 40), k_max=100)
    t_end = time.perf_counter()
    return {"dataset": args.dataset, "model": args.model, "hparams": hp, "threads": args.threads,
            "blas_threads": args.blas_threads, "wall_seconds": round(t_end - _T0, 4),
            "import_seconds": round(t_load - _T0, 4), "load_seconds": round(t_fit - t_load, 4),
            "fit_seconds": round(t_eval - t_fit, 4), "eval_seconds": round(t_end - t_eval, 4),
            "recall@20": round(res.metrics["recall@20"], 6), "ndcg@20": round(res.metrics["ndcg@20"], 6)}


def check(args, hp: dict) -> dict:
    """Factors after k iterations of the evaluated curve == those of a fresh fit(iterations=k)."""
    import numpy as np

    import peer
    from jnskr.data import load_dataset

    ds = load_dataset(DATA / args.dataset, format="kgat", cache=False)
    k = int(hp["iterations"])
    eval_fn = peer.make_eval_fn(ds.test, [ds.train])
    curve = peer.fit_curve(args.model, hp, ds.train, eval_fn, curve_checkpoints(args.model, k), 1)
    plain = peer.fit(args.model, {**hp, "iterations": k}, ds.train, 1)
    same = {name: bool(np.array_equal(getattr(curve.model, name), getattr(plain, name)))
            for name in ("user_factors", "item_factors")}
    return {"dataset": args.dataset, "model": args.model, "hparams": hp, "iterations": k, "threads": 1,
            "identical": same, "ok": all(same.values()),
            "what": "factors after k iterations with an evaluation at every checkpoint (one fit, callback) "
                    "vs. a fresh fit(iterations=k) without callback, same seed, one thread"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("--model", choices=("als", "bpr"), required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="implicit num_threads and torch threads (default: all cores, like implicit's 0)")
    ap.add_argument("--blas-threads", type=int, default=1, help="BLAS threads in fit (implicit recommends 1)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a hyper-parameter")
    ap.add_argument("--seed", type=int, default=2020)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--whole-process", action="store_true", help="time a user's whole script (see module doc)")
    mode.add_argument("--check", action="store_true", help="verify the curve's timing method (see module doc)")
    ap.add_argument("--save", action="store_true", help="with --whole-process: also write <dataset>-<model>-whole.json")
    args = ap.parse_args(argv)
    hp, chosen = chosen_hparams(args.dataset, args.model, args.set)

    if args.whole_process:
        out = whole_process(args, hp)
        print(json.dumps(out))
        if args.save:
            sys.path.insert(0, str(REPO))
            import peer
            from bench.common import write_result

            write_result(f"{args.dataset}-{args.model}-whole", {**out, "environment": peer.environment()}, OUT)
        return 0

    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(REPO))
    import peer
    from bench.common import write_result

    if args.check:
        out = check(args, hp)
        print(json.dumps(out))
        write_result(f"check-{args.dataset}-{args.model}", {**out, "environment": peer.environment()}, OUT)
        return 0 if out["ok"] else 1

    from jnskr.data import load_dataset

    env = peer.environment()
    ds = load_dataset(DATA / args.dataset, format="kgat", cache=False)
    k = int(hp["iterations"])
    eval_fn = peer.make_eval_fn(ds.test, [ds.train], keys=None)
    cps = curve_checkpoints(args.model, k, sparse=args.dataset == "amazon-book")
    curve = peer.fit_curve(args.model, hp, ds.train, eval_fn, cps, args.threads, seed=args.seed,
                           blas_threads=args.blas_threads)
    t = time.perf_counter()
    peer.fit(args.model, hp, ds.train, args.threads, seed=args.seed, blas_threads=args.blas_threads)
    plain = time.perf_counter() - t
    final = curve.points[-1]
    payload = {
        "dataset": args.dataset, "model": args.model, "implicit": peer.IMPLICIT_VERSION, "hparams": hp,
        "overridden": args.set, "selected_on_validation": chosen, "threads": args.threads,
        "blas_threads": args.blas_threads, "seed": args.seed,
        "test": {m: round(v, 6) for m, v in final.metrics.items()},
        "fit_seconds": round(curve.fit_seconds, 4), "plain_fit_seconds": round(plain, 4),
        "prep_seconds": round(curve.prep_seconds, 5),
        "curve": curve.to_dict()["points"],
        "protocol": "train = the whole train file, test = the test file; jnskr's evaluate(ks=(10,20,40), "
                    "k_max=100), train items excluded, users without test items skipped",
        "timing": "one fit() with a callback; train_seconds = wall time inside fit minus evaluation time; "
                  "plain_fit_seconds = a second fit() of the same configuration without callback",
        "environment": env, "load_after": list(os.getloadavg()),
    }
    path = write_result(f"{args.dataset}-{args.model}", payload, OUT)
    print(f"{args.dataset} {args.model} {json.dumps(hp)} threads={args.threads}")
    for p in curve.points:
        print(f"  it {p.iteration:4d}  train {p.train_seconds:8.3f} s  recall@20 {p.metrics['recall@20']:.4f}  "
              f"ndcg@20 {p.metrics['ndcg@20']:.4f}  (eval {p.eval_seconds:.2f} s)")
    print(f"test recall@20 {final.metrics['recall@20']:.4f} ndcg@20 {final.metrics['ndcg@20']:.4f}; "
          f"fit {curve.fit_seconds:.3f} s (plain fit {plain:.3f} s) -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
