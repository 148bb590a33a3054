"""Tune one RecBole model on validation under the fair protocol, then run the chosen setting on 3 seeds.

Run with any python (it only starts ``run.py`` with the venv's python, single-threaded, nice 19):

    python bench/peers/recbole/tune.py --dataset ml100k-kgat --model BPR \\
        --space '{"learning_rate": [0.01, 0.005, 0.001, 0.0005], "embedding_size": [64, 128]}'

The fair protocol (docs/results.md, "Fair protocol for peers"):

* every trial trains on the same 90 % train part and is selected on the same validation split
  (``convert.py``) by validation Recall@20 at RecBole's best epoch;
* the same number of trials per model (``--trials``, 6): the grid given by ``--space`` (values from
  RecBole's documented "Tuning Hyper Parameters" ranges for the model), sampled without
  replacement with a fixed seed when it has more points;
* no time budget (``run.py --budget 0``): a run ends by RecBole's early stop (``stopping_step``
  10 validations without improvement) or its ``epochs`` cap, and the JSON says which;
* trials use seed 2020; the chosen setting then runs on the other seeds (2021, 2022); the seed-2020
  trial of the chosen setting is that setting's seed-2020 run (same config, same seed,
  ``reproducibility: True``), so it is copied rather than rerun;
* the same full-ranking evaluator (RecBole's, checked equal to jnskr's: README, crosscheck.py).

Writes the trials to ``bench/results/recbole/tuning/<dataset>-<model>/`` (not read by the report)
and the chosen setting's runs to ``bench/results/recbole/<dataset>-<model>-tuned-s<seed>.json``,
each with a ``tuning`` record (the space, every trial's setting and validation score, the choice).
Resumable: a trial or seed whose JSON exists is not run again.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
RESULTS = REPO / "bench" / "results" / "recbole"
VALID_KEY = "recall@20"
NOT_CONVERGED = {"budget", "terminated"}


def grid(space: dict, trials: int, seed: int) -> list[dict]:
    keys = sorted(space)
    points = [dict(zip(keys, vals)) for vals in itertools.product(*(space[k] for k in keys))]
    if len(points) < trials:
        raise SystemExit(f"the space has {len(points)} points, fewer than --trials {trials}")
    if len(points) > trials:
        points = random.Random(seed).sample(points, trials)
    return points


def tag_of(params: dict) -> str:
    return "-".join(f"{k}{v}" for k, v in sorted(params.items())).replace(" ", "")


def run_one(a, params: dict, seed: int, tag: str, out: Path) -> dict:
    path = out / f"{a.dataset}-{a.model}-{tag}-s{seed}.json"
    if not path.exists():
        cmd = ["nice", "-n", "19", str(a.python), str(HERE / "run.py"), "--dataset", a.dataset, "--model", a.model,
               "--seed", str(seed), "--budget", "0", "--tag", tag, "--out", str(out)]
        for k, v in sorted(params.items()):
            cmd += ["--set", f"{k}={json.dumps(v)}"]
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        t = time.time()
        print(f"{time.strftime('%H:%M:%S')} run {a.model} {params} seed {seed}", flush=True)
        log = (HERE / "work")
        log.mkdir(exist_ok=True)
        with open(log / f"{a.dataset}-{a.model}-{tag}-s{seed}.log", "w") as f:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
        if rc != 0 or not path.exists():
            raise SystemExit(f"run.py failed (rc {rc}) for {params} seed {seed}; see {log}")
        print(f"  done in {time.time() - t:.0f} s", flush=True)
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--space", required=True, help="JSON: {RecBole key: [values]}")
    p.add_argument("--space-source", default="RecBole 1.2.1 docs, the model's 'Tuning Hyper Parameters' ranges")
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--sampling-seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=[2020, 2021, 2022])
    p.add_argument("--python", type=Path, default=HERE / ".venv" / "bin" / "python")
    p.add_argument("--tuning-only", action="store_true", help="run the trials, not the extra seeds")
    p.add_argument("--stopping-step", type=int, default=None,
                   help="RecBole's early-stop patience for every trial and seed (default: RecBole's, 10)")
    p.add_argument("--name", default="tuned", help="result tag (default tuned): <dataset>-<model>-<name>-s<seed>.json")
    a = p.parse_args(argv)

    space = json.loads(a.space)
    points = grid(space, a.trials, a.sampling_seed)
    if a.stopping_step is not None:
        points = [dict(p_, stopping_step=a.stopping_step) for p_ in points]
    sub = f"{a.dataset}-{a.model}" + ("" if a.name == "tuned" else f"-{a.name}")
    trial_dir = RESULTS / "tuning" / sub
    trial_dir.mkdir(parents=True, exist_ok=True)
    trials = []
    for i, params in enumerate(points):
        r = run_one(a, params, a.seeds[0], f"t{i}", trial_dir)
        trials.append({"params": params, "file": f"tuning/{sub}/{a.dataset}-{a.model}-t{i}-s{a.seeds[0]}.json",
                       "valid_recall@20": (r.get("valid") or {}).get(VALID_KEY),
                       "valid_ndcg@20": (r.get("valid") or {}).get("ndcg@20"),
                       "best_epoch": r.get("best_epoch"), "epochs_run": r.get("epochs_run"),
                       "stopped_by": r.get("stopped_by"), "seconds_per_epoch": r.get("seconds_per_epoch"),
                       "total_seconds": r.get("total_seconds")})
    ok = [t for t in trials if t["valid_recall@20"] is not None and t["stopped_by"] not in NOT_CONVERGED]
    if not ok:
        raise SystemExit("no trial finished")
    best_i = max(range(len(trials)), key=lambda i: (trials[i] in ok, trials[i]["valid_recall@20"] or -1.0))
    chosen = trials[best_i]["params"]
    tuning = {"selected_on": f"valid {VALID_KEY} (RecBole's best epoch of each trial)", "space": space,
              "space_source": a.space_source, "n_trials": len(trials), "sampling_seed": a.sampling_seed,
              "trial_seed": a.seeds[0],
              "budget": f"none: RecBole's early stop (stopping_step {a.stopping_step or 10}) or its epochs cap",
              "stopping_step": a.stopping_step or 10,
              "trials": trials, "chosen": chosen, "chosen_trial": best_i}
    print(json.dumps({"chosen": chosen, "valid": trials[best_i]["valid_recall@20"]}), flush=True)
    if a.tuning_only:
        return 0
    for seed in a.seeds:
        final = RESULTS / f"{a.dataset}-{a.model}-{a.name}-s{seed}.json"
        if seed == a.seeds[0]:
            r = json.loads((trial_dir / f"{a.dataset}-{a.model}-t{best_i}-s{seed}.json").read_text())
            r["tag"] = a.name
            r["copied_from"] = trials[best_i]["file"]
        else:
            r = run_one(a, chosen, seed, a.name, RESULTS)
        r["tuning"] = tuning
        final.write_text(json.dumps(r, indent=1) + "\n")
        print(f"{final.name}: test R@20 {r['test'].get('recall@20')} stopped_by {r['stopped_by']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
