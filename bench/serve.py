"""Bounded load test of `jnskr serve` on loopback: latency percentiles, throughput, memory.

    python -m jnskr train --out /tmp/ml100k-run            # ~2 min on 2 cores (ml-100k)
    python -m bench.serve /tmp/ml100k-run --clients 4 --seconds 10 --k 20
    python -m bench.serve /tmp/ml100k-run --mixed --seconds 20 --name serve-mixed

Starts the server in a subprocess on 127.0.0.1 with a free port (`python -m jnskr.serve`;
``--server-rev REV`` serves with the service modules of an older git revision, ``--server-cmd``
with any command, to compare), waits for ``/health``, then runs ``--clients``
threads, each with one keep-alive ``http.client`` connection, sending
``GET /recommend?user=U&k=K`` for random known users (``--explain`` adds explanations;
``--post`` sends fold-in ``POST /recommend`` requests with 5-item histories instead) until
``--seconds`` have passed or ``--max-requests`` were sent.  Every request is timed on the client
(send to full body read).  A warm-up of ``--warmup`` requests is not counted.  Any non-200
answer counts as an error.

``--mixed``: two phases on the same server, ``--seconds`` each (alternated in ``--rounds``
slices, as the load of other jobs drifts): the light clients alone, then the same light clients plus ``--heavy-clients`` clients sending the largest legal request
(``GET /recommend?user=U&k=10000&explain=true&facts=100``) back to back; then three probes of
hostile input (a 30 MB body, 10,000 unknown ids, JSON nested 100,000 deep) whose status and
reply size are recorded.  The server's peak memory (VmHWM) is read from /proc after each phase.

Writes bench/results/<name>.json (machine, ``lscpu`` CPU model, ``uptime`` before and after,
torch version, git commit, settings, p50/p90/p99/max latency in ms, requests/s, errors) and
prints a table.  Only 127.0.0.1 traffic; the loops are bounded in count and time, and the
server is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import machine, print_table, write_result

HOST = "127.0.0.1"
HEAVY_PATH = "/recommend?user={u}&k=10000&explain=true&facts=100"


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
                out: list, errors: list, seed: int, timeout: float = 10.0) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
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
            conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
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


def summary(lat: list[float], errors: list[int], wall: float) -> dict:
    ms = sorted(x * 1000 for x in lat)
    return {"requests": len(ms), "errors": int(sum(errors)), "req_per_s": round(len(ms) / wall, 1),
            "p50_ms": round(percentile(ms, 50), 3), "p90_ms": round(percentile(ms, 90), 3),
            "p99_ms": round(percentile(ms, 99), 3), "max_ms": round(ms[-1], 3) if ms else None}


def run_clients(port: int, groups: list[tuple[list, int, float]], seconds: float, max_requests: int) -> tuple:
    """Start every group's clients at once: (paths, n clients, timeout) per group.  -> (per-group
    (latencies, errors), wall seconds)."""
    lock = threading.Lock()
    budget = [max_requests]
    res = [([], []) for _ in groups]
    t0 = time.perf_counter()
    stop_at = t0 + seconds
    threads = []
    for g, (paths, n, timeout) in enumerate(groups):
        for s in range(n):
            threads.append(threading.Thread(target=client_loop, args=(port, paths, stop_at, budget, lock, res[g][0],
                                                                      res[g][1], 1000 * g + s, timeout)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    return res, time.perf_counter() - t0


def server_memory_mb(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = {"VmHWM:": "peak_rss_mb", "VmRSS:": "rss_mb"}.get(line.split(" ")[0].split("\t")[0])
            if key:
                out[key] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


def shell(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    for line in shell("lscpu").splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return ""


def probe(port: int, method: str, path: str, body: bytes | None) -> dict:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    t0 = time.perf_counter()
    try:
        conn.request(method, path, body=body, headers={"content-type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        out = {"status": r.status, "reply_bytes": len(data), "reply": data[:160].decode("utf-8", "replace")}
    except (OSError, http.client.HTTPException) as e:
        out = {"status": None, "error": f"{type(e).__name__}: {e}"}
    conn.close()
    out["ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return out


def hostile_probes(port: int) -> dict:
    big = b'{"history": ["' + b"x" * (30 << 20) + b'"]}'
    ghosts = json.dumps({"history": [f"ghost-{i:06d}-" + "y" * 40 for i in range(10_000)]}).encode()
    deep = b"[" * 100_000 + b"]" * 100_000
    return {"30 MB body": {"request_bytes": len(big), **probe(port, "POST", "/recommend", big)},
            "10,000 unknown ids": {"request_bytes": len(ghosts), **probe(port, "POST", "/recommend", ghosts)},
            "JSON nested 100,000 deep": {"request_bytes": len(deep), **probe(port, "POST", "/recommend", deep)}}


TEMP_DIRS: list[Path] = []
REV_LAUNCHER = """import sys
sys.path.insert(0, {dir!r})
import torch, uvicorn
from rev_engine import Engine
from rev_app import create_app
torch.set_num_threads({threads}); torch.set_grad_enabled(False)
uvicorn.run(create_app(Engine.load({run_dir!r})), host={host!r}, port={port}, log_level="warning", access_log=False)
"""


def rev_server_cmd(rev: str, run_dir: Path, port: int, threads: int) -> list[str]:
    """A command serving `run_dir` with src/jnskr/serve/{app,engine}.py as they were at git
    revision `rev` (the rest of the package as it is now): a baseline for comparisons."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="serve-rev-"))
    TEMP_DIRS.append(d)
    for name in ("app", "engine"):
        src = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]), "show",
                              f"{rev}:src/jnskr/serve/{name}.py"], capture_output=True, text=True, check=True).stdout
        (d / f"rev_{name}.py").write_text(src.replace("from jnskr.serve.engine import", "from rev_engine import"))
    (d / "launch.py").write_text(REV_LAUNCHER.format(dir=str(d), threads=threads, run_dir=str(run_dir), host=HOST,
                                                     port=port))
    return [sys.executable, str(d / "launch.py")]


def start_server(args, port: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    if args.server_rev:
        cmd = rev_server_cmd(args.server_rev, args.run_dir, port, args.threads)
    elif args.server_cmd:
        cmd = shlex.split(args.server_cmd.format(run_dir=args.run_dir, host=HOST, port=port, threads=args.threads))
    else:
        cmd = [sys.executable, "-m", "jnskr.serve", str(args.run_dir), "--host", HOST, "--port", str(port),
               "--threads", str(args.threads)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


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
    ap.add_argument("--mixed", action="store_true", help="light clients alone, then with heavy clients; probes")
    ap.add_argument("--heavy-clients", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1, help="--mixed: alternate the two phases this many times")
    ap.add_argument("--no-probes", action="store_true", help="--mixed without the hostile-input probes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    ap.add_argument("--server-cmd", default=None,
                    help="start the server with this command instead ({run_dir} {host} {port} {threads} filled in)")
    ap.add_argument("--server-rev", default=None,
                    help="serve with src/jnskr/serve/app.py and engine.py of this git revision (a baseline)")
    ap.add_argument("--name", default=None, help="result name (default serve-<host>)")
    ap.add_argument("--note", default=None, help="free text stored in the result (what the server was, the load)")
    args = ap.parse_args()
    if not (1 <= args.clients <= 64 and 0 < args.seconds <= 600 and 0 <= args.heavy_clients <= 8
            and 1 <= args.rounds <= 100):
        raise SystemExit("--clients must be 1..64, --heavy-clients 0..8, --rounds 1..100 and --seconds 0..600")

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
    heavy_paths = [("GET", HEAVY_PATH.format(u=u), None) for u in users]

    uptime_before = shell("uptime")
    port = free_port()
    proc = start_server(args, port)
    phases, probes = {}, None
    try:
        t_start = time.perf_counter()
        wait_healthy(port, proc)
        startup_s = time.perf_counter() - t_start
        warm: list = []
        client_loop(port, paths, time.perf_counter() + 30, [args.warmup], threading.Lock(), warm, [], seed=99)
        if args.mixed:
            client_loop(port, heavy_paths, time.perf_counter() + 60, [3], threading.Lock(), warm, [], 98, 60.0)
        plan = [("light", [(paths, args.clients, 10.0)])]
        if args.mixed:
            plan.append(("light+heavy", [(paths, args.clients, 10.0), (heavy_paths, args.heavy_clients, 120.0)]))
        acc = {name: ([[] for _ in groups], [[] for _ in groups], [0.0]) for name, groups in plan}
        for _ in range(args.rounds):  # alternate the phases: the other jobs' load drifts
            for name, groups in plan:
                res, wall = run_clients(port, groups, args.seconds / args.rounds, args.max_requests)
                for g, (lat, err) in enumerate(res):
                    acc[name][0][g].extend(lat)
                    acc[name][1][g].extend(err)
                acc[name][2][0] += wall
                phases.setdefault(name, {})["loadavg"] = list(os.getloadavg())
        for name, (lats, errs, wall) in acc.items():
            phases[name].update({"seconds": round(wall[0], 2), "light": summary(lats[0], errs[0], wall[0]),
                                 "server_memory": server_memory_mb(proc.pid)})
            if len(lats) > 1:
                phases[name]["heavy"] = summary(lats[1], errs[1], wall[0])
        if args.mixed and not args.no_probes:
            probes = hostile_probes(port)
            probes["server_memory_after"] = server_memory_mb(proc.pid)
            probes["server_alive"] = proc.poll() is None and probe(port, "GET", "/health", None)["status"] == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        for d in TEMP_DIRS:
            shutil.rmtree(d, ignore_errors=True)
    endpoint = "POST /recommend" if args.post else ("GET /recommend" + (" explain" if args.explain else ""))
    rows = []
    for name, ph in phases.items():
        for who in ("light", "heavy"):
            if who in ph:
                clients = args.clients if who == "light" else args.heavy_clients
                rows.append({"phase": name, "clients": f"{clients} {who}", **ph[who],
                             "server_peak_mb": ph["server_memory"].get("peak_rss_mb")})
    payload = {
        "machine": {**machine("cpu"), "lscpu_model": cpu_model()}, "uptime_before": uptime_before,
        "uptime_after": shell("uptime"), "run_dir": str(args.run_dir), "dataset": ids.get("dataset"),
        "n_users": ids["n_users"], "n_items": ids["n_items"], "server_torch_threads": args.threads,
        "server_cmd": args.server_cmd, "server_rev": args.server_rev, "note": args.note, "startup_s": round(startup_s, 2),
        "command": " ".join(["python", "-m", "bench.serve", *sys.argv[1:]]),
        "light_request": f"{endpoint} k={args.k}", "heavy_request": HEAVY_PATH if args.mixed else None,
        "phases": phases, "probes": probes,
        "target": "light p99 <= 20 ms alone, <= 50 ms with the heavy client, 0 errors (2-core machine)",
    }
    if not args.mixed:  # the single-phase layout of earlier results
        payload["result"] = {"endpoint": endpoint, "k": args.k, "clients": args.clients,
                             "seconds": phases["light"]["seconds"], **phases["light"]["light"]}
    name = args.name or f"serve-{socket.gethostname()}"
    path = write_result(name, payload)
    print_table(rows, ["phase", "clients", "requests", "errors", "req_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms",
                       "server_peak_mb"],
                title=f"jnskr serve on {ids.get('dataset')} ({HOST}, startup {startup_s:.1f} s); {uptime_before}")
    for k, v in (probes or {}).items():
        print(f"probe {k}: {v}")
    print(f"wrote {path}")
    errors = sum(ph[w]["errors"] for ph in phases.values() for w in ("light", "heavy") if w in ph)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
