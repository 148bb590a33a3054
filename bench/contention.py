"""A busy machine: a whole `jnskr train` command beside k other PyTorch processes, against quiet.

The competitors run small parallel tensor ops in a loop with PyTorch's default threading (their
OpenMP threads spin while waiting, as on a shared server running other jobs); each stops by
itself after `--competitor-seconds`.  The command is timed quiet, then with the competitors, with
jnskr's defaults (passive OpenMP waiting, a thread count chosen from the data) and, for the
record, with the spinning default forced back (`OMP_WAIT_POLICY=ACTIVE`).

    python -m bench.contention --competitors 2

Writes bench/results/contention-cpu.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
from bench.common import SHARED_DATA, machine, print_table, write_result  # noqa: E402

COMPETITOR = """
import time, torch
x = torch.randn(200_000); y = torch.randn(256, 256)
end = time.time() + {seconds}
while time.time() < end:
    for _ in range(50):
        x.add_(1.0).mul_(0.999)
    y = torch.tanh(y @ y * 1e-3)
"""


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def with_competitors(cmd: list[str], env: dict, k: int, seconds: float) -> float:
    comp_env = {key: v for key, v in os.environ.items() if key not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    procs = [subprocess.Popen([sys.executable, "-c", COMPETITOR.format(seconds=seconds)], env=comp_env)
             for _ in range(k)]
    try:
        time.sleep(2.0)  # let them start their thread pools
        return timed(cmd, env)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--competitors", type=int, default=2)
    ap.add_argument("--competitor-seconds", type=float, default=600)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2, help="quiet runs (the median is the baseline)")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="jnskr-contention-"))
    data = SHARED_DATA / "ml100k-kgat"

    def cmd(tag: str) -> list[str]:
        return [sys.executable, "-m", "jnskr", "--quiet", "train", "--data", str(data), "--format", "kgat", "--set",
                f"train.epochs={args.epochs}", "--out", str(out / f"{tag}-{time.time_ns()}")]

    base_env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    spin_env = {**base_env, "OMP_WAIT_POLICY": "ACTIVE"}
    rows = []
    for label, env in (("jnskr defaults", base_env), ("spinning OpenMP (OMP_WAIT_POLICY=ACTIVE)", spin_env)):
        quiet = sorted(timed(cmd("quiet"), env) for _ in range(args.repeats))[args.repeats // 2]
        busy = with_competitors(cmd("busy"), env, args.competitors, args.competitor_seconds)
        rows.append({"setting": label, "quiet_seconds": round(quiet, 2), "busy_seconds": round(busy, 2),
                     "ratio": round(busy / quiet, 2)})
    result = {"command": " ".join(cmd("x")[1:-2]), "competitors": args.competitors,
              "competitor": "2 spinning OpenMP threads each (PyTorch defaults), small parallel ops in a loop",
              "rows": rows, "machine": machine(), "target": "busy <= 3x quiet with jnskr's defaults"}
    path = write_result("contention-cpu", result)
    print_table(rows, list(rows[0]), title=f"`jnskr train` beside {args.competitors} spinning PyTorch processes")
    print(f"written {path}")


if __name__ == "__main__":
    main()
