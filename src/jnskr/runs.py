"""Run folders: everything a run leaves behind, written atomically, read back without pickle.

    model.safetensors      parameters
    structure.safetensors  arrays the model and `recommend` need (neighbour lists, train CSR)
    config.yaml            the resolved config
    id_maps.json           raw user / item / relation / tail ids and item names
    metrics.json           {"test": {...}, "valid": {...}, "best_epoch", "k_max", "protocol"}
    log.jsonl              one JSON line per epoch
    environment.json       versions, device, git commit, seed, dataset fingerprint, schema version
    checkpoint/            trainer state for --resume (optimizer, epoch, early stopping)
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file

from jnskr.errors import JnskrError

RUN_SCHEMA_VERSION = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise JnskrError(f"{path}: not found (is this a jnskr run folder?)") from None
    except json.JSONDecodeError as exc:
        raise JnskrError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise JnskrError(f"{path}: not found (is this a jnskr run folder?)")
    return load_file(str(path))


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def environment(device: str, seed: int, fingerprint: str, extra: dict | None = None) -> dict:
    import jnskr

    env = {
        "schema_version": RUN_SCHEMA_VERSION,
        "jnskr": jnskr.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "cuda": torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else None,
        "git_commit": git_commit(),
        "seed": seed,
        "dataset_fingerprint": fingerprint,
    }
    if extra:
        env.update(extra)
    return env


def write_yaml(path: Path, obj) -> None:
    atomic_write_text(path, yaml.safe_dump(obj, sort_keys=False))


def read_yaml(path: Path):
    if not Path(path).is_file():
        raise JnskrError(f"{path}: not found (is this a jnskr run folder?)")
    return yaml.safe_load(Path(path).read_text())
