"""Contain iALS, then beat it: implicit's ALS and jnskr at and around its point, tuned alike.

implicit's ALS is a point of ENMF's objective (docs/solver.md, "The iALS point"): `enmf.h: fixed`,
no dropout, `negative_weight: 1`, `alpha: α_imp − 1`, `reg: λ`.  This benchmark tunes, on the same
validation holdout of train (10%, seed 2020) and over the same grid of (factors, λ, α) with d up to
512, implicit's ALS and ENMF at that point, each trial stopped after `PATIENCE` checkpoints without
a better validation Recall@20; both solve each block with implicit's default, 3 warm-started
conjugate-gradient steps.  JNSKR's candidates are its dataset preset (chosen on validation by
earlier searches) and ENMF's chosen (d, λ, α) with a grid of its KG weight μ and the learning
rate of its first-order part (its own, smaller, trial budget).  Every chosen setting is trained on
all of train for the chosen number of iterations/sweeps and scored on test with jnskr's evaluator.

    python -m bench.ials --dataset ml100k-kgat
    python -m bench.ials --dataset amazon-book --grid chosen      # implicit's own chosen point only

Writes bench/results/ials/<dataset>.json (every trial, the choices, test metrics, seconds, machine,
load).  Run it in a quiet window.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
from bench.common import SHARED_DATA, machine, print_table, write_result  # noqa: E402

FACTORS = [64, 128, 256, 512]
REG = [3, 10, 30, 100]
ALPHA = [2, 5, 10, 20, 40]  # implicit's α (observed pairs weigh α, the rest 1); 40: implicit's own earlier choice on
#                            kgcn-music and Amazon-book (bench/results/tta/peers/tune-*-als.json)
PATIENCE = 4  # checkpoints (iterations / sweeps) without a better validation Recall@20
MAX_ITERS = 30
JNSKR_MU = [0.01, 0.1]
#: the first-order step of the attention, tails and relations: at the iALS scale (c⁻ = 1, large α)
#: the presets' 0.05-0.1 moves the 0.01-scale tail vectors by ~10x their size in one Adagrad step
#: (kgcn-music, validation R@20 at d 256, λ 30, α 9: 0.327 at lr 0.1, 0.372 at 0.01, 0.391 at 0.002)
JNSKR_LR = [0.002, 0.01]
SPLIT = dict(ratio=0.1, seed=2020)


def grid(kind: str, dataset: str) -> list[dict]:
    if kind == "full":
        return [dict(factors=f, regularization=r, alpha=a) for f, r, a in itertools.product(FACTORS, REG, ALPHA)]
    import json

    tune = json.loads((HERE / "results" / "tta" / "peers" / f"tune-{dataset}-als.json").read_text())
    hp = tune["chosen"]["hparams"]
    return [dict(factors=hp["factors"], regularization=hp["regularization"], alpha=hp["alpha"])]


def implicit_trial(hp: dict, train, eval_fn, threads: int, iterations: int | None = None) -> dict:
    from bench.peers.implicit.peer import fit_curve

    cps = list(range(1, (iterations or MAX_ITERS) + 1))
    t = time.perf_counter()
    curve = fit_curve("als", {**hp, "iterations": cps[-1]}, train, eval_fn, cps, threads=threads,
                      patience=None if iterations else PATIENCE)
    best = curve.best()
    return {"hparams": hp, "valid" if iterations is None else "test": best.metrics, "iterations": best.iteration,
            "train_seconds": best.train_seconds, "wall_seconds": time.perf_counter() - t,
            "last": curve.points[-1].metrics if iterations else None}


def ials_overrides(model: str, hp: dict, n_active: int) -> list[str]:
    """jnskr config keys of implicit's point (c⁻ = 1, c⁺ = α_imp, λ) for `model`."""
    if model == "enmf":  # implicit's default solver too: 3 conjugate-gradient steps per block, warm-started
        return ["model=enmf", "train.block_solver=cg", "train.cg_steps=3", f"enmf.embed_dim={hp['factors']}", f"enmf.reg={hp['regularization']}",
                f"enmf.alpha={hp['alpha'] - 1}", "enmf.h=fixed", "enmf.keep_prob=1.0", "enmf.lambda_emb=0",
                "enmf.negative_weight=1", "enmf.weighting=uniform"]
    return ["model=jnskr", "train.block_solver=cg", "train.cg_steps=3", f"jnskr.embed_dim={hp['factors']}", f"jnskr.reg={hp['regularization']}",
            f"jnskr.alpha={hp['alpha'] - 1}", "jnskr.h=fixed", "jnskr.keep_prob=[1.0,1.0]", "jnskr.lambda_emb=0",
            f"jnskr.c0={n_active}", "jnskr.beta=0", "jnskr.c_pos=1", f"jnskr.mu={hp.get('mu', 0.01)}",
            f"train.lr={hp.get('lr', 0.002)}"]


EVAL_EVERY = [1]  # sweeps between validations of jnskr's trials (--eval-every; patience counts validations)


def jnskr_trial(ds, dataset: str, sets: list[str], refit: bool) -> dict:
    """Selection on validation (and, with `refit`, the refit on all of train and the test metrics)."""
    from jnskr.api import Recommender
    from jnskr.config import build_config

    cfg = build_config(dataset, overrides=[*sets, "train.solver=als", f"train.epochs={MAX_ITERS}",
                                           f"train.eval_every={EVAL_EVERY[0]}", f"train.patience={PATIENCE}",
                                           f"train.refit={'true' if refit else 'false'}", "device=cpu"])
    t = time.perf_counter()
    rec = Recommender(cfg).fit(ds)
    m = rec.metrics
    out = {"sets": sets, "valid": {k: m["valid"][k] for k in ("recall@20", "ndcg@20")},
           "iterations": m["best_epoch"], "wall_seconds": time.perf_counter() - t}
    if refit:
        out["test"] = {k: m["test"][k] for k in ("recall@20", "ndcg@20")}
    return out


def _key(hp: dict) -> tuple:
    return tuple(sorted((k, float(v) if isinstance(v, (int, float)) else str(v)) for k, v in hp.items()))


def best_of(trials: list[dict]) -> dict:
    return max(trials, key=lambda t: (t["valid"]["recall@20"], t["valid"]["ndcg@20"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--grid", choices=("full", "chosen"), default="full")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="implicit's threads")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: implicit,enmf,jnskr")
    ap.add_argument("--extend", action="store_true", help="reuse the trials of an earlier result file with the "
                    "same settings and run only the grid points it lacks (the final fits always run again)")
    ap.add_argument("--jnskr-grid", choices=("full", "one"), default="full",
                    help="JNSKR's trials: the μ x ridge-factor grid, or one (μ 0.01 at ENMF's choice; large data)")
    ap.add_argument("--no-jnskr-preset", action="store_true", help="leave JNSKR's preset out of its candidates "
                    "(large data, where its figures are in bench/results/tta/)")
    ap.add_argument("--eval-every", type=int, default=1, help="sweeps between validations of jnskr's trials "
                    "(large data: a validation pass costs seconds)")
    args = ap.parse_args()
    EVAL_EVERY[0] = args.eval_every

    from jnskr.data import load_dataset
    from jnskr.data.split import holdout_split
    from bench.peers.implicit.peer import make_eval_fn

    load0 = os.getloadavg()[0]
    ds = load_dataset(str(SHARED_DATA / args.dataset), format="kgat", log_warnings=False)
    part, valid = holdout_split(ds.train, **SPLIT)
    n_active = int((ds.train.item_counts() > 0).sum())
    points = grid(args.grid, args.dataset)
    skip = set(filter(None, args.skip.split(",")))
    name = args.dataset + ("" if args.grid == "full" else "-chosen")
    earlier, extended_from = {}, None
    if args.extend and (HERE / "results" / "ials" / f"{name}.json").is_file():
        import json

        old = json.loads((HERE / "results" / "ials" / f"{name}.json").read_text())
        earlier = {m: {_key(t["hparams"]): t for t in v["trials"]} for m, v in old["methods"].items()}
        extended_from = old["machine"].get("date")
    result = {"dataset": args.dataset, "grid": {"factors": FACTORS, "regularization": REG, "alpha": ALPHA}
              if args.grid == "full" else points, "patience": PATIENCE, "max_iterations": MAX_ITERS,
              "split": SPLIT, "jnskr_eval_every": args.eval_every, "selection": "highest validation recall@20 (ties: ndcg@20) over (trial, checkpoint)",
              "machine": machine(), "load_average_1min_start": load0, "methods": {},
              "trials_reused_from": extended_from}

    if "implicit" not in skip:
        t0 = time.perf_counter()
        eval_valid = make_eval_fn(valid, [part])
        trials = []
        for hp in points:
            kept = earlier.get("implicit-als", {}).get(_key(hp))
            trials.append(kept or implicit_trial(hp, part, eval_valid, args.threads))
            print(f"implicit {hp}: {trials[-1]['valid']['recall@20']:.4f} @ {trials[-1]['iterations']}",
                  file=sys.stderr, flush=True)
        chosen = best_of(trials)
        test = implicit_trial(chosen["hparams"], ds.train, make_eval_fn(ds.test, [ds.train]), args.threads,
                              iterations=chosen["iterations"])
        result["methods"]["implicit-als"] = {"trials": trials, "chosen": chosen, "test": test["last"],
                                             "test_train_seconds": test["train_seconds"],
                                             "tuning_seconds": time.perf_counter() - t0}

    enmf_chosen = None
    if "enmf" not in skip:
        t0 = time.perf_counter()
        trials = []
        one = len(points) == 1  # one candidate: its selection run is the trial, refit and tested in the same run
        for hp in points:
            kept = earlier.get("enmf-ials", {}).get(_key(hp))
            tr = kept or {"hparams": hp, **jnskr_trial(ds, args.dataset, ials_overrides("enmf", hp, n_active),
                                                       refit=one)}
            trials.append(tr)
            print(f"enmf {hp}: {tr['valid']['recall@20']:.4f} @ {tr['iterations']}", file=sys.stderr, flush=True)
        enmf_chosen = best_of(trials)
        final = enmf_chosen if "test" in enmf_chosen else jnskr_trial(ds, args.dataset, enmf_chosen["sets"], refit=True)
        result["methods"]["enmf-ials"] = {"trials": trials, "chosen": enmf_chosen, "test": final["test"],
                                          "refit_wall_seconds": final["wall_seconds"],
                                          "tuning_seconds": time.perf_counter() - t0}

    if "jnskr" not in skip:
        t0 = time.perf_counter()
        base = enmf_chosen["hparams"] if enmf_chosen else points[0]
        trials = []
        combos = itertools.product(JNSKR_MU, JNSKR_LR) if args.jnskr_grid == "full" else [(0.01, 0.002)]
        jn_earlier = {**earlier.get("jnskr-ials", {}), **earlier.get("jnskr", {})}
        # the dataset's own JNSKR preset (chosen on validation by earlier searches) is a candidate too
        if not args.no_jnskr_preset:
            hp = {"preset": args.dataset}
            kept = jn_earlier.get(_key(hp))
            trials.append(kept or {"hparams": hp, **jnskr_trial(ds, args.dataset, ["model=jnskr"], refit=False)})
            print(f"jnskr {hp}: {trials[-1]['valid']['recall@20']:.4f} @ {trials[-1]['iterations']}", file=sys.stderr,
                  flush=True)
        combos = list(combos)
        one = len(combos) == 1 and not trials  # one candidate: its selection run is refit and tested at once
        for mu, lr in combos:
            hp = {**base, "mu": mu, "lr": lr}
            kept = jn_earlier.get(_key(hp))
            tr = kept or {"hparams": hp, **jnskr_trial(ds, args.dataset, ials_overrides("jnskr", hp, n_active),
                                                       refit=one)}
            trials.append(tr)
            print(f"jnskr {hp}: {tr['valid']['recall@20']:.4f} @ {tr['iterations']}", file=sys.stderr, flush=True)
        chosen = best_of(trials)
        final = chosen if "test" in chosen else jnskr_trial(ds, args.dataset, chosen["sets"], refit=True)
        result["methods"]["jnskr"] = {"trials": trials, "chosen": chosen, "test": final["test"],
                                           "refit_wall_seconds": final["wall_seconds"],
                                           "tuning_seconds": time.perf_counter() - t0}

    result["load_average_1min_end"] = os.getloadavg()[0]
    out = write_result(f"ials/{name}", result)
    rows = [{"method": k, "trials": len(v["trials"]), "chosen": str(v["chosen"]["hparams"]),
             "valid R@20": round(v["chosen"]["valid"]["recall@20"], 4),
             "test R@20": round(v["test"]["recall@20"], 4), "test NDCG@20": round(v["test"]["ndcg@20"], 4),
             "tuning s": round(v["tuning_seconds"], 1)} for k, v in result["methods"].items()]
    print_table(rows, list(rows[0]), title=f"tuned on validation, tested once: {args.dataset}")
    print(f"written {out}")


if __name__ == "__main__":
    main()


def section(results: Path) -> list[str]:
    """The docs/results.md section from bench/results/ials/*.json (bench.report calls it)."""
    import json

    files = sorted((results / "ials").glob("*.json"))
    if not files:
        return []
    md = ["## Contain iALS: implicit's ALS and jnskr tuned alike", "",
          "`bench/ials.py`. implicit's ALS is a point of ENMF's objective (docs/solver.md): both are tuned on",
          "the same validation holdout (10% of train, seed 2020) over the same grid of d, λ and α (d up to 512),",
          f"each trial stopped after {PATIENCE} checkpoints without a better validation Recall@20, both solving",
          "every block with 3 warm-started conjugate-gradient steps. JNSKR's candidates: its dataset preset (chosen",
          "on validation earlier) and ENMF's choice with a grid of its KG weight μ and first-order learning rate. Each choice is",
          "then trained on all of train and tested once.", ""]
    for f in files:
        r = json.loads(f.read_text())
        m = r["machine"]
        md += [f"### {r['dataset']}" + (" (implicit's own chosen point only)" if f.stem.endswith("-chosen") else ""),
               "", f"{m.get('cpu', '?')}, {m.get('date', '?')}, load {r['load_average_1min_start']:.1f} at start.", "",
               "| method | trials | chosen (d, λ, α_implicit[, μ, lr]) | valid R@20 | test R@20 | test NDCG@20 | "
               "sweeps/iterations | trial seconds (sum) |", "|---|---|---|---|---|---|---|---|"]
        for name, v in r["methods"].items():
            hp = v["chosen"]["hparams"]
            chosen = f"its preset `{hp['preset']}`" if "preset" in hp else (
                f"{hp['factors']}, {hp['regularization']:g}, {hp['alpha']:g}" + (f", μ {hp['mu']:g}" if "mu" in hp else "")
                + (f", lr {hp['lr']:g}" if "lr" in hp else ""))
            md.append(f"| {name} | {len(v['trials'])} | {chosen} | {v['chosen']['valid']['recall@20']:.4f} | "
                      f"{v['test']['recall@20']:.4f} | {v['test']['ndcg@20']:.4f} | {v['chosen']['iterations']} | "
                      f"{sum(t['wall_seconds'] for t in v['trials']):.0f} |")
        md.append("")
    return md
