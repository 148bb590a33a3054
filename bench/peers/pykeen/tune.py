"""Hyper-parameter selection for one (dataset, model, loop) on VALIDATION MRR only (venv python).

    OMP_NUM_THREADS=1 nice -n 19 bench/.venv-pykeen/bin/python bench/peers/pykeen/tune.py \
        --dataset nations --model distmult --loop slcwa --trials 12 --budget 120

Random search without replacement over a small grid (seeded; trial 0 is a fixed, sensible
baseline), embedding dim fixed (default 200 on FB15k-237 / WN18RR, 128 on the small sets).
Each trial is run.py's training with ``--no-test`` (no test triple is ranked during selection;
``--trial-test improved``: see below),
early stopping on valid MRR and a training-seconds budget.  DistMult is tuned without PyKEEN's
unit-norm entity constraint unless ``--entity-norm`` (pilot on Nations, valid MRR: 0.49 with,
0.77 without, softplus loss; see README).  The trial with the best valid
both-sides MRR wins (ties: the earlier trial).  Then the winner is trained once more with the
same seed WITH test evaluation (``final``; written also as a normal run JSON, tag ``selected``):
its valid curve must reproduce the trial's (CPU, single thread: deterministic; compared at the
epochs both runs evaluated: a CPU-seconds budget may stop them a few epochs apart), and its test
metrics at the best-validation epoch are the reported figures.

Writes ``bench/results/kg/pykeen/tune-<dataset>-<model>-<loop>.json`` after every trial (a run
that is killed leaves the trials done so far): space, fixed settings, every trial (parameters,
best valid metrics, best epoch, training seconds to best, valid curve, load), the winner, final.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as runner  # noqa: E402

LARGE = {"FB15k-237", "WN18RR"}

# The grid.  reg_weight = the model's LpRegularizer weight (PyKEEN default: DistMult 0.1 on
# relations, ComplEx 0.01 on both); optimizer Adam, no weight decay.
SPACE = {
    "common": {"lr": [0.001, 0.003, 0.01, 0.03], "reg_weight": [0.0, 0.01, 0.1]},
    "small": {"batch_size": [64, 128, 256]},
    "large": {"batch_size": [512, 1024]},
    "slcwa": {"num_negs": [4, 16, 64]},
    "lcwa": {"label_smoothing": [0.0, 0.1], "inverse": [True, False]},
}
BASELINE = {"lr": 0.01, "reg_weight": 0.0, "batch_size": 128, "num_negs": 16, "label_smoothing": 0.0,
            "inverse": True}
BASELINE_LARGE = {"batch_size": 1024}


def space_for(dataset: str, loop: str) -> dict:
    sp = dict(SPACE["common"])
    sp.update(SPACE["large" if dataset in LARGE else "small"])
    sp.update(SPACE[loop])
    return sp


def sample(space: dict, n: int, seed: int, baseline: dict) -> list[dict]:
    keys = sorted(space)
    grid = [dict(zip(keys, v)) for v in itertools.product(*(space[k] for k in keys))]
    first = {k: baseline[k] for k in keys}
    rest = [g for g in grid if g != first]
    random.Random(seed).shuffle(rest)
    return [first] + rest[: max(0, n - 1)]


def base_cfg(a: argparse.Namespace) -> dict:
    argv = ["--dataset", a.dataset, "--model", a.model, "--loop", a.loop, "--dim", str(a.dim),
            "--max-epochs", str(a.max_epochs), "--eval-every", str(a.eval_every),
            "--patience", str(a.patience), "--budget", str(a.budget), "--budget-clock", a.budget_clock,
            "--seed", str(a.seed),
            "--eval-batch-size", str(a.eval_batch_size), "--data", a.data, "--quiet"]
    if not a.entity_norm:
        argv.append("--no-entity-norm")
    argv += ["--fast-distmult"] * a.fast_distmult + ["--fast-complex"] * a.fast_complex
    return runner.config(runner.parser().parse_args(argv))


def summary(res: dict) -> dict:
    return {"best_epoch": res["best_epoch"], "train_seconds_to_best": res["best_train_seconds"],
            "train_cpu_seconds_to_best": res["best_train_cpu_seconds"], "train_cpu_seconds": res["train_cpu_seconds"],
            "valid_at_best": res["valid_at_best"], "epochs_run": res["epochs_run"],
            "stopped_by": res["stopped_by"], "train_seconds": res["train_seconds"],
            "eval_seconds": res["eval_seconds"], "total_seconds": res["total_seconds"],
            "load_start": res["load_start"], "load_end": res["load_end"],
            "curve": [{"epoch": c["epoch"], "train_seconds": c["train_seconds"],
                       "train_cpu_seconds": c["train_cpu_seconds"],
                       "valid_mrr": c["valid"]["both"]["mrr"]} for c in res["curve"]]}


def reproduces(final: dict, trial_curve: list) -> bool:
    """Same valid MRR at every epoch both runs evaluated (a CPU-seconds budget can end them a few
    epochs apart, and the budget-triggered last evaluation may fall on an odd epoch)."""
    common = [c for c in trial_curve if c["epoch"] in final]
    return bool(common) and all(final[c["epoch"]] == c["valid_mrr"] for c in common)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", required=True, choices=["distmult", "complex"])
    p.add_argument("--loop", required=True, choices=["slcwa", "lcwa"])
    p.add_argument("--data", default=str(runner.DATA))
    p.add_argument("--dim", type=int, default=None, help="default: 200 on FB15k-237/WN18RR, else 128")
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--budget", type=float, default=120.0, help="training seconds per trial")
    p.add_argument("--budget-clock", choices=["wall", "cpu"], default="cpu",
                   help="default cpu: the budget counts this process's CPU seconds, so that other jobs on "
                        "the shared machine do not shrink a trial")
    p.add_argument("--max-epochs", type=int, default=1000)
    p.add_argument("--eval-every", type=int, default=None, help="default: 2 (small sets), 1 (large)")
    p.add_argument("--patience", type=int, default=None, help="evaluations; default: 10 (small), 3 (large)")
    p.add_argument("--entity-norm", action="store_true",
                   help="DistMult: keep PyKEEN's unit-norm entity constraint (default here: off, see README)")
    p.add_argument("--eval-batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--search-seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="restrict the grid, e.g. --set 'batch_size=[1024]'")
    p.add_argument("--no-final", action="store_true", help="skip the final run with test evaluation")
    p.add_argument("--trial-test", choices=["never", "improved"], default="never",
                   help="improved: trials rank test whenever their valid MRR improves (recorded, never used "
                        "for selection) and the winner's trial gives the test figures instead of a final rerun; "
                        "for the large sets, where a rerun doubles hours of CPU")
    p.add_argument("--fast-distmult", action="store_true", help="run.py --fast-distmult (opt-in einsum DistMult)")
    p.add_argument("--fast-complex", action="store_true", help="run.py --fast-complex")
    p.add_argument("--top-of", default=None, metavar="TUNE_JSON",
                   help="round 2: the --trials best configurations (valid MRR) of this earlier selection")
    p.add_argument("--suffix", default="", help="output name suffix, e.g. round2")
    p.add_argument("--out", default=str(runner.OUT))
    a = p.parse_args(argv)
    large = a.dataset in LARGE
    a.dim = a.dim or (200 if large else 128)
    a.eval_every = a.eval_every or (1 if large else 2)
    a.patience = a.patience or (3 if large else 10)
    space = space_for(a.dataset, a.loop)
    for s in a.set:
        k, _, v = s.partition("=")
        if k in space:
            space[k] = json.loads(v)
        else:
            print(f"--set {k}: not searched for this loop, ignored", file=sys.stderr)
    baseline = {**BASELINE, **(BASELINE_LARGE if large else {})}
    baseline.update({k: v[0] for k, v in space.items() if baseline.get(k) not in v})
    trials = sample(space, a.trials, a.search_seed, baseline)
    if a.top_of:  # round 2: the best configurations of an earlier selection, e.g. with a larger budget
        prev = json.loads(Path(a.top_of).read_text())
        ranked = sorted(prev["trials"], key=lambda r: -(r["valid_at_best"] or {}).get("both", {}).get("mrr", -1))
        trials = [r["params"] for r in ranked[: a.trials]]
    base = base_cfg(a)
    suffix = f"-{a.suffix}" if a.suffix else ""
    out = Path(a.out) / f"tune-{a.dataset}-{a.model}-{a.loop}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"framework": "pykeen", "dataset": a.dataset, "model": a.model, "loop": a.loop,
           "selection": "best valid both-sides MRR (filtered, realistic) at any evaluation",
           "trial_test": a.trial_test,
           "space": space, "n_grid": len(list(itertools.product(*space.values()))), "trials_planned": len(trials),
           "fixed": {k: base[k] for k in runner.HPARAMS if k not in space}, "budget_train_seconds": a.budget, "budget_clock": a.budget_clock,
           "max_epochs": a.max_epochs, "eval_every": a.eval_every, "patience": a.patience, "seed": a.seed,
           "search_seed": a.search_seed, "top_of": a.top_of, "argv": sys.argv[1:] if argv is None else argv,
           "machine": runner.machine(), "trials": [], "winner": None, "final": None}
    t0 = time.perf_counter()

    def save() -> None:
        doc["wall_seconds"] = round(time.perf_counter() - t0, 1)
        out.write_text(json.dumps(doc, indent=1) + "\n")

    for i, params in enumerate(trials):
        cfg = {**base, **params, "test": a.trial_test, "save_embeddings": None}
        res = runner.run(cfg)
        rec = {"trial": i, "params": params, **summary(res)}
        if a.trial_test == "improved":
            rec["test_at_best"] = res["test_at_best"]
        doc["trials"].append(rec)
        best = max(doc["trials"], key=lambda r: (r["valid_at_best"] or {}).get("both", {}).get("mrr", -1))
        doc["winner"] = {"trial": best["trial"], "params": best["params"],
                         "valid_mrr": best["valid_at_best"]["both"]["mrr"]}
        save()
        print(f"[{i + 1}/{len(trials)}] {params} valid mrr {rec['valid_at_best']['both']['mrr']:.4f} "
              f"epoch {rec['best_epoch']} ({rec['train_cpu_seconds_to_best']:.0f} cpu-s, {rec['stopped_by']})",
              flush=True)

    if a.trial_test == "improved" and doc["winner"]:  # the winner's own test figures; no rerun
        w = doc["trials"][doc["winner"]["trial"]]
        doc["final"] = {"params": w["params"], "from_trial": w["trial"],
                        **{k: v for k, v in w.items() if k not in ("trial", "params")}}
        save()
    elif not a.no_final and doc["winner"]:
        w = doc["trials"][doc["winner"]["trial"]]
        cfg = {**base, **w["params"], "test": "every", "save_embeddings": None, "tag": "selected" + suffix}
        res = runner.run(cfg)
        res["argv"] = ["(tune.py final run)"] + doc["argv"]
        same = reproduces({c["epoch"]: c["valid"]["both"]["mrr"] for c in res["curve"]}, w["curve"])
        doc["final"] = {"params": w["params"], "reproduces_trial_valid_curve": same, **summary(res),
                        "test_at_best": res["test_at_best"],
                        "run_json": f"{a.dataset}-{a.model}-{a.loop}-selected{suffix}-s{a.seed}.json"}
        (Path(a.out) / doc["final"]["run_json"]).write_text(json.dumps(res, indent=1) + "\n")
        save()
        print(f"final: valid {res['valid_at_best']['both']['mrr']:.4f} test {res['test_at_best']['both']['mrr']:.4f} "
              f"epoch {res['best_epoch']} {res['best_train_cpu_seconds']:.0f} cpu-s reproduces={same}", flush=True)
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
