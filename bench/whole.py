"""Whole commands timed back to back: `jnskr train` on a KGAT folder (no other flag: the preset the
folder name picks) against implicit's ALS script (start-up, load, fit, evaluate), each run
`--repeats` times alternately, wall seconds from process start to exit.  Then the jnskr run's
recommendations (`jnskr recommend RUN --all --k 100`) are scored from the file.

    python -m bench.whole --dataset ml100k-kgat

Writes bench/results/tta/whole-<dataset>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
from bench.common import SHARED_DATA, machine, print_table, write_result  # noqa: E402


def wall(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - t0, out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml100k-kgat")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    data = SHARED_DATA / args.dataset
    tmp = Path(tempfile.mkdtemp(prefix="jnskr-whole-"))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    load0 = os.getloadavg()[0]
    j_times, a_times, runs = [], [], []
    for r in range(args.repeats):
        run = tmp / f"run{r}"
        t, _ = wall([sys.executable, "-m", "jnskr", "--quiet", "train", "--data", str(data), "--format", "kgat",
                     "--out", str(run)], env)
        j_times.append(t)
        runs.append(run)
        t, out = wall([sys.executable, str(HERE / "peers" / "implicit" / "run.py"), args.dataset, "--model", "als",
                       "--whole-process"], env)
        a_times.append(t)
        als = json.loads(out.strip().splitlines()[-1])
    recs = tmp / "recs.csv"
    subprocess.run([sys.executable, "-m", "jnskr", "--quiet", "recommend", str(runs[-1]), "--all", "--k", "100",
                    "--output", str(recs)], check=True, env=env)
    scored = json.loads(subprocess.run([sys.executable, str(HERE / "score_recs.py"), str(recs), "--data", str(data),
                                        "--format", "kgat"], check=True, capture_output=True, text=True).stdout)
    metrics = json.loads((runs[-1] / "metrics.json").read_text())
    row = {"jnskr_train_wall_s": statistics.median(j_times), "implicit_als_wall_s": statistics.median(a_times),
           "ratio": statistics.median(j_times) / statistics.median(a_times),
           "jnskr_train_seconds": metrics["train_seconds"], "als_fit_s": als.get("fit_seconds"),
           "train_ratio": metrics["train_seconds"] / als["fit_seconds"],
           "jnskr_recall@20": scored["recall@20"], "jnskr_ndcg@20": scored["ndcg@20"],
           "als_recall@20": als.get("recall@20"), "als_ndcg@20": als.get("ndcg@20")}
    result = {"dataset": args.dataset, "row": row, "jnskr_walls": j_times, "als_walls": a_times, "als": als,
              "jnskr_metrics": metrics, "scored_from_recommendations": scored, "machine": machine(),
              "load_average_1min_start": load0, "load_average_1min_end": os.getloadavg()[0],
              "commands": {"jnskr": f"jnskr train --data {data} --format kgat --out RUN; "
                                    f"jnskr recommend RUN --all --k 100 --output recs.csv",
                           "als": f"python bench/peers/implicit/run.py {args.dataset} --model als --whole-process"}}
    path = write_result(f"tta/whole-{args.dataset}", result)
    print_table([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}], list(row),
                title="whole commands, wall seconds (median)")
    print(f"written {path}")


if __name__ == "__main__":
    main()
