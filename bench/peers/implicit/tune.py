"""Select implicit ALS / BPR hyper-parameters on jnskr's validation split (never on test).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 nice -n 19 python bench/peers/implicit/tune.py ml100k-kgat --model als

Split: ``holdout_split(ds.train, 0.1, 2020)`` (jnskr's ``data.valid_ratio`` / ``data.split_seed``
defaults); the model trains on the 90 % part and is scored on the held-out 10 % with the 90 %
part excluded, by jnskr's evaluator.  Every trial is one `peer.fit_curve` run with validation
Recall@20 / NDCG@20 at its checkpoints (ALS stops after `PATIENCE` checkpoints without a new best).

Selection rule: the (trial, checkpoint) with the highest validation Recall@20 (jnskr's selection
metric); ties go to fewer training seconds.  The chosen hyper-parameters are the trial's, with
``iterations`` = that checkpoint.

Grids: ml100k-kgat and kgcn-music get the full grid; when the best value of regularization /
alpha (ALS) or learning rate / regularization (BPR) lies on the grid's edge, one step beyond it
along `LADDER` is tried, repeatedly (at most 4 rounds).  amazon-book (one validation pass takes
~20 s single-threaded on a quiet machine, ~100 s under load) gets stages, each built around the
best so far, under a wall-clock `--budget`: a 2 x 2 reg x alpha (ALS) or lr x reg (BPR) grid at
128 factors, then the grid neighbours of the best values, then 64 / 256 factors.  A trial is not
started once the budget (counting the sessions a ``--resume`` continues) is spent.  After each
stage, if the chosen checkpoint is its trial's last, that trial runs once more with the longer
checkpoint list `LONGER`.  Then, budget allowing, the same edge steps as above.

The result, written after every trial (``--resume`` skips trials already in it):
``bench/results/tta/peers/tune-<dataset>-<model>.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[2]))

import peer  # noqa: E402
from bench.common import SHARED_DATA, write_result  # noqa: E402

OUT = HERE.parents[1] / "results" / "tta" / "peers"
DATASETS = ("ml100k-kgat", "kgcn-music", "amazon-book")
KEY, SECOND = "recall@20", "ndcg@20"
#: stop a trial after this many checkpoints without a new best; none for BPR, whose validation
#: recall sits on a plateau for the first 10-50 epochs (depending on the learning rate) before it rises
PATIENCE = {"als": 5, "bpr": None}
SELECTION = ("highest validation recall@20 over every (trial, checkpoint); ties to fewer training seconds; "
             "iterations = the checkpoint's iteration/epoch count")

ALS_REG = [0.01, 0.1, 1, 10, 30, 100]
ALS_ALPHA = [1, 2, 5, 10, 20, 40]
BPR_LR = [0.005, 0.01, 0.05, 0.1]
BPR_REG = [0.0001, 0.001, 0.01, 0.1]
FACTORS = [64, 128, 256]
#: beyond the grid: tried one step at a time (at the best other values) while the best sits on an edge
LADDER = {"regularization": [0.001, 0.01, 0.1, 1, 3, 10, 30, 100, 300, 1000, 3000], "alpha": [0.5, 1, 2, 5, 10, 20, 40,
          80, 160, 320], "learning_rate": [0.001, 0.005, 0.01, 0.05, 0.1, 0.2, 0.5],
          "bpr_regularization": [1e-5, 0.0001, 0.001, 0.01, 0.1, 0.3, 1]}

#: checkpoints: small data every ALS iteration up to 30, BPR on a widening grid up to 200;
#: amazon-book fewer (each validation pass ~20 s single-threaded)
CHECKPOINTS = {
    ("small", "als"): list(range(1, 31)),
    ("small", "bpr"): [1, 2, 3, 5, 7, 10, 15, 20, 25, 30, *range(40, 201, 10)],
    ("amazon-book", "als"): [2, 4, 8, 15],
    ("amazon-book", "bpr"): [25, 50, 100, 200],
}
#: amazon-book: when the chosen checkpoint is a trial's last, that trial is run again with these
#: further checkpoints (the iteration count is tuned beyond the grid's last checkpoint)
LONGER = {"als": [20, 30], "bpr": [300]}


def full_grid(model: str) -> list[dict]:
    """Every combination (ml100k-kgat, kgcn-music)."""
    if model == "als":
        grid = itertools.product(FACTORS, ALS_REG, ALS_ALPHA)
        return [dict(factors=f, regularization=r, alpha=a) for f, r, a in grid]
    grid = itertools.product(FACTORS, BPR_LR, BPR_REG)
    return [dict(factors=f, learning_rate=lr, regularization=r) for f, lr, r in grid]


def _neighbours(values: list, v) -> list:
    i = values.index(v)
    return [values[j] for j in (i - 1, i + 1) if 0 <= j < len(values)]


def staged_grid(model: str, best: dict | None, stage: int) -> list[dict]:
    """amazon-book's stages; `best` is the best trial's hyper-parameters so far (None in stage 0)."""
    a, b = ("regularization", "alpha") if model == "als" else ("learning_rate", "regularization")
    va, vb = (ALS_REG, ALS_ALPHA) if model == "als" else (BPR_LR, BPR_REG)
    if stage == 0:  # the coarse grid at 128 factors
        ca, cb = ([10, 100], [5, 20]) if model == "als" else ([0.01, 0.05], [0.001, 0.01])
        return [{"factors": 128, a: x, b: y} for x, y in itertools.product(ca, cb)]
    if stage == 1:  # neighbouring grid values of the two at 128 factors
        return [{**best, a: x} for x in _neighbours(va, best[a])] + [{**best, b: y} for y in _neighbours(vb, best[b])]
    if stage == 2:  # factors around the best
        return [{**best, "factors": f} for f in (64, 256)]
    return []


def edge_steps(model: str, best: dict, tried: list[dict]) -> list[dict]:
    """Next values outside the grid for each of the two tuned parameters whose best value is the
    largest/smallest tried so far (one step along `LADDER`, at the best other values)."""
    out = []
    for name in (("regularization", "alpha") if model == "als" else ("learning_rate", "regularization")):
        ladder = LADDER["bpr_regularization" if model == "bpr" and name == "regularization" else name]
        values = sorted({t[name] for t in tried if all(t[k] == best[k] for k in best if k != name)})
        v = best[name]
        if v not in ladder:
            continue
        i = ladder.index(v)
        if v == values[-1] and i + 1 < len(ladder):
            out.append({**best, name: ladder[i + 1]})
        if v == values[0] and i > 0:
            out.append({**best, name: ladder[i - 1]})
    return out


def best_of(trials: list[dict]) -> tuple[dict, dict] | None:
    """(trial, point) chosen by the selection rule."""
    cands = [(t, p) for t in trials for p in t["points"]]
    if not cands:
        return None
    return max(cands, key=lambda tp: (tp[1][KEY], -tp[1]["train_seconds"]))


def same(h1: dict, h2: dict) -> bool:
    return {k: float(v) for k, v in h1.items()} == {k: float(v) for k, v in h2.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", choices=DATASETS)
    ap.add_argument("--model", choices=peer.MODELS, required=True)
    ap.add_argument("--threads", type=int, default=1, help="implicit num_threads and torch threads (default 1)")
    ap.add_argument("--budget", type=float, default=None,
                    help="wall seconds after which no trial starts (default: none; amazon-book 5400)")
    ap.add_argument("--resume", action="store_true", help="keep the trials already in the result file")
    ap.add_argument("--seed", type=int, default=2020, help="implicit random_state")
    args = ap.parse_args(argv)

    from jnskr.data import load_dataset
    from jnskr.data.split import holdout_split

    ds = load_dataset(SHARED_DATA / args.dataset, format="kgat", cache=False)
    train_part, valid = holdout_split(ds.train, 0.1, 2020)
    eval_fn = peer.make_eval_fn(valid, [train_part], keys=(KEY, SECOND))
    big = args.dataset == "amazon-book"
    checkpoints = CHECKPOINTS[("amazon-book" if big else "small", args.model)]
    budget = args.budget if args.budget is not None else (5400.0 if big else None)
    name = f"tune-{args.dataset}-{args.model}"
    path = OUT / f"{name}.json"

    trials: list[dict] = []
    earlier = 0.0  # wall seconds of the sessions a --resume continues
    resumed: list[str] = []  # when each --resume session started
    if args.resume and path.is_file():
        old = json.loads(path.read_text())
        trials, earlier = old["trials"], float(old.get("wall_seconds", 0.0))
        resumed = old.get("resumed_sessions", []) + [time.strftime("%Y-%m-%d %H:%M:%S")]
    env_start = peer.environment() if not (args.resume and path.is_file()) else old["environment_start"]
    t_start = time.perf_counter()
    skipped: list[dict] = []

    def save(done: bool) -> None:
        chosen = best_of(trials)
        payload = {
            "dataset": args.dataset, "model": args.model, "implicit": peer.IMPLICIT_VERSION,
            "split": {"function": "jnskr.data.split.holdout_split", "ratio": 0.1, "seed": 2020,
                      "train_part_nnz": train_part.nnz, "valid_nnz": valid.nnz},
            "selection": SELECTION, "patience_checkpoints": PATIENCE[args.model], "checkpoints": checkpoints,
            "threads": args.threads, "blas_threads": 1, "seed": args.seed,
            "grid": "full, then edge steps" if not big else "staged (see tune.py staged_grid), then edge steps",
            "budget_seconds": budget,
            "complete": done, "skipped_by_budget": skipped,
            "chosen": None if chosen is None else {
                "hparams": {**chosen[0]["hparams"], "iterations": chosen[1]["iteration"]},
                "valid": {KEY: chosen[1][KEY], SECOND: chosen[1][SECOND]},
                "train_seconds_to_checkpoint": chosen[1]["train_seconds"]},
            "wall_seconds": round(earlier + time.perf_counter() - t_start, 2),
            "environment_start": env_start, "resumed_sessions": resumed,
            "environment_end": peer.environment() if done else None,
            "note": "timings measured single-threaded at nice 19 while other jobs shared the 2-core CPU; "
                    "they order trials but are not the side-by-side figures",
            "trials": trials,
        }
        write_result(name, payload, OUT)

    def run(hp: dict, cps: list[int] = checkpoints) -> None:
        if any(same(t["hparams"], hp) and t.get("checkpoints", checkpoints)[-1] >= cps[-1] for t in trials):
            return
        if budget is not None and earlier + time.perf_counter() - t_start > budget:
            skipped.append(hp)
            return
        t0 = time.perf_counter()
        curve = peer.fit_curve(args.model, hp, train_part, eval_fn, cps, args.threads, seed=args.seed,
                               patience=PATIENCE[args.model], key=KEY)
        best = curve.best(KEY)
        trials.append({
            "hparams": hp, "checkpoints": cps, "fit_seconds": round(curve.fit_seconds, 4),
            "stopped_early": curve.stopped_early,
            "wall_seconds": round(time.perf_counter() - t0, 3), "best_iteration": best.iteration,
            "points": [{"iteration": p.iteration, "train_seconds": round(p.train_seconds, 4),
                        "eval_seconds": round(p.eval_seconds, 4), KEY: round(p.metrics[KEY], 6),
                        SECOND: round(p.metrics[SECOND], 6)} for p in curve.points],
        })
        print(f"[{len(trials):3d}] {json.dumps(hp)}: best {KEY} {best.metrics[KEY]:.4f} {SECOND} "
              f"{best.metrics[SECOND]:.4f} @ {best.iteration} ({best.train_seconds:.2f} s train; "
              f"trial {time.perf_counter() - t0:.1f} s)", flush=True)
        save(False)

    def longer_if_rising() -> None:
        """amazon-book: the best trial once more with `LONGER` checkpoints if it peaks at its end."""
        trial, point = best_of(trials)
        if big and not trial["stopped_early"] and point["iteration"] == trial["points"][-1]["iteration"]:
            run(trial["hparams"], checkpoints + LONGER[args.model])

    if not big:
        for hp in full_grid(args.model):
            run(hp)
    else:
        for stage in range(3):
            chosen = best_of(trials)
            base = None if chosen is None else {k: v for k, v in chosen[0]["hparams"].items()}
            for hp in staged_grid(args.model, base, stage):
                run(hp)
            longer_if_rising()
    for _ in range(4):  # the best on an edge of what was tried: step outside it (at most 4 rounds)
        chosen = best_of(trials)
        steps = [hp for hp in edge_steps(args.model, chosen[0]["hparams"], [t["hparams"] for t in trials])
                 if not any(same(t["hparams"], hp) for t in trials)]
        if not steps or (budget is not None and earlier + time.perf_counter() - t_start > budget):
            break
        for hp in steps:
            run(hp)
    longer_if_rising()
    save(True)
    chosen = best_of(trials)
    print(f"chosen: {json.dumps({**chosen[0]['hparams'], 'iterations': chosen[1]['iteration']})} "
          f"valid {KEY} {chosen[1][KEY]:.4f} {SECOND} {chosen[1][SECOND]:.4f} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
