"""Bounded load test of `jnskr serve` on loopback: latency percentiles and throughput.

    python -m jnskr train --out /tmp/ml100k-run            # ~2 min on 2 cores (ml-100k)
    python bench/serve.py /tmp/ml100k-run --clients 4 --seconds 10 --k 20

Starts the server in a subprocess on 127.0.0.1 with a free port (`python -m jnskr.serve`),
waits for ``/health``, then runs ``--clients`` threads, each with one keep-alive
``http.client`` connection, sending ``GET /recommend?user=U&k=K`` for random known users
(``--explain`` adds explanations; ``--post`` sends fold-in ``POST /recommend`` requests with
5-item histories instead) until ``--seconds`` have passed or ``--max-requests`` were sent.
Every request is timed on the client (send to full body read).  A warm-up of ``--warmup``
requests is not counted.  Any non-200 answer counts as an error.

Writes bench/results/serve-<host>.json (machine, torch version, git commit, settings,
p50/p90/p99/max latency in ms, requests/s, errors) and prints a table.  Only 127.0.0.1 traffic;
the loops are bounded in count and time, and the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, write_result  # noqa: E402

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode} before it was ready")
        try:
            c = http.client.HTTPConnection(HOST, port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                c.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer /health within {timeout:.0f} s")


def client_loop(port: int, paths: list, stop_at: float, budget: list, lock: threading.Lock,
                out: list, errors: list, seed: int) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    lat: list[float] = []
    n_err = 0
    while time.perf_counter() < stop_at:
        with lock:
            if budget[0] <= 0:
                break
            budget[0] -= 1
        method, path, body = rng.choice(paths)
        headers = {"content-type": "application/json"} if body is not None else {}
        t0 = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            ok = r.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=10)
        dt = time.perf_counter() - t0
        if ok:
            lat.append(dt)
        else:
            n_err += 1
    conn.close()
    with lock:
        out.extend(lat)
        errors.append(n_err)


def percentile(sorted_ms: list[float], p: float) -> float:
    if not sorted_ms:
        return float("nan")
    i = min(len(sorted_ms) - 1, max(0, int(round(p / 100 * (len(sorted_ms) - 1)))))
    return sorted_ms[i]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--max-requests", type=int, default=200_000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--post", action="store_true", help="fold-in POST /recommend with 5-item histories")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    ap.add_argument("--name", default=None, help="result name (default serve-<host>)")
    args = ap.parse_args()
    if not (1 <= args.clients <= 64 and 0 < args.seconds <= 600):
        raise SystemExit("--clients must be 1..64 and --seconds 0..600")

    ids = json.loads((args.run_dir / "id_maps.json").read_text())
    users = ids.get("user_ids") or [str(u) for u in range(ids["n_users"])]
    items = ids.get("item_ids") or [str(i) for i in range(ids["n_items"])]
    rng = random.Random(0)
    if args.post:
        paths = [("POST", "/recommend", json.dumps({"history": rng.sample(items, 5), "k": args.k}).encode())
                 for _ in range(500)]
    else:
        ex = "&explain=true" if args.explain else ""
        paths = [("GET", f"/recommend?user={u}&k={args.k}{ex}", None) for u in users]

    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    cmd = [sys.executable, "-m", "jnskr.serve", str(args.run_dir), "--host", HOST, "--port", str(port),
           "--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        t_start = time.perf_counter()
        wait_healthy(port, proc)
        startup_s = time.perf_counter() - t_start
        lock = threading.Lock()
        # warm-up (not counted)
        warm: list = []
        client_loop(port, paths, time.perf_counter() + 30, [args.warmup], lock, warm, [], seed=99)
        lat: list[float] = []
        errors: list[int] = []
        budget = [args.max_requests]
        t0 = time.perf_counter()
        stop_at = t0 + args.seconds
        threads = [threading.Thread(target=client_loop, args=(port, paths, stop_at, budget, lock, lat, errors, s))
                   for s in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.seconds + 60)
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    ms = sorted(x * 1000 for x in lat)
    load = os.getloadavg()
    row = {
        "endpoint": "POST /recommend" if args.post else ("GET /recommend" + (" explain" if args.explain else "")),
        "k": args.k, "clients": args.clients, "seconds": round(wall, 2), "requests": len(ms),
        "errors": int(sum(errors)), "req_per_s": round(len(ms) / wall, 1),
        "p50_ms": round(percentile(ms, 50), 3), "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3), "max_ms": round(ms[-1], 3) if ms else None,
    }
    payload = {
        "machine": machine("cpu"), "run_dir": str(args.run_dir), "dataset": ids.get("dataset"),
        "n_users": ids["n_users"], "n_items": ids["n_items"], "server_torch_threads": args.threads,
        "startup_s": round(startup_s, 2), "loadavg_after": [round(x, 2) for x in load],
        "command": " ".join(["python", "bench/serve.py", *sys.argv[1:]]), "result": row,
        "target": "p99 <= 20 ms for k=20 on ml-100k (2-core machine)",
    }
    name = args.name or f"serve-{socket.gethostname()}"
    path = write_result(name, payload)
    print_table([row], list(row), title=f"jnskr serve on {ids.get('dataset')} ({HOST}, server startup "
                                         f"{startup_s:.1f} s, load average {load[0]:.1f})")
    print(f"wrote {path}")
    return 0 if row["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
