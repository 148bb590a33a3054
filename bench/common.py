"""Shared helpers for the benchmarks: machine description, results files, tables."""

from __future__ import annotations

import gzip
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("JNSKR_SHARED_DATA", REPO.parent / "shared" / "data"))


def machine(device: str = "cpu") -> dict:
    import torch

    info = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "device": device,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_1min": os.getloadavg()[0],
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        info["commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["commit"] = None
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_result(name: str, payload: dict, root: Path = RESULTS) -> Path:
    path = root / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(tmp, path)
    return path


#: a run's per-user test values live next to its JSON in this gzip sidecar (a 70k-user test set
#: would otherwise make the run JSON several MB)
PER_USER_SUFFIX = ".per_user.json.gz"


def write_run(name: str, payload: dict, root: Path = RESULTS) -> Path:
    """`write_result`, with `payload["per_user"]` moved to `<name>.per_user.json.gz`."""
    payload = dict(payload)
    per_user = payload.pop("per_user", None)
    if per_user is not None:
        side = root / f"{name}{PER_USER_SUFFIX}"
        side.parent.mkdir(parents=True, exist_ok=True)
        tmp = side.with_name(side.name + ".tmp")
        tmp.write_bytes(gzip.compress(json.dumps(per_user, separators=(",", ":")).encode(), mtime=0))
        os.replace(tmp, side)
        payload["per_user_file"] = side.name
    return write_result(name, payload, root)


def read_per_user(path: Path, run: dict) -> dict:
    """The per-user values of the run JSON at `path`: inline (older runs) or from its sidecar."""
    if "per_user" in run:
        return run["per_user"]
    if not run.get("per_user_file"):
        return {}
    return json.loads(gzip.decompress((path.parent / run["per_user_file"]).read_bytes()))


def print_table(rows: list[dict], columns: list[str], title: str = "") -> None:
    if title:
        print(title)
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) if rows else len(c) for c in columns}
    print("  ".join(c.rjust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).rjust(widths[c]) for c in columns))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:.0f}"
    return "-" if v is None else str(v)
