"""Run folders: everything a run leaves behind, written atomically, read back without pickle.

    model.safetensors      parameters
    structure.safetensors  arrays the model and `recommend` need (neighbour lists, train CSR)
    selection.safetensors  the same for model selection's model (written at the start; what
                           `--checkpoint best` loads the best checkpoint's weights into)
    config.yaml            the resolved config
    id_maps.json           raw user / item / relation / tail ids and item names (`jnskr.ids`)
    metrics.json           {"test": {...}, "valid": {...}, "best_epoch", "k_max", "protocol", ...}
    log.jsonl              one JSON line per epoch
    environment.json       versions, device, CPU, threads, git commit, seed, dataset fingerprint
    status.json            {"status": running | interrupted | diverged | finished, "resumable_from_epoch"}
    checkpoint/            trainer state for --resume (`jnskr.training.checkpoint`)

Every file is written by `atomic_write`: a temporary file beside the target, then a rename;
the next write to the same target removes temporary files a killed writer left.  A new run
folder appears whole (`RunFolder.create`): its first files are written into a temporary folder
beside it, which is then renamed into place.  File-system failures become one-line
`JnskrError`s naming the path.
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file

from jnskr import yamlsafe
from jnskr.errors import JnskrError
from jnskr.version import __version__

RUN_SCHEMA_VERSION = 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def remove_stale_temps(path: Path) -> None:
    """Delete temporary files (and folders) an interrupted write of `path` left beside it."""
    path = Path(path)
    try:
        for p in path.parent.glob(f"{_tmp_prefix(path)}*.tmp"):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
    except OSError:
        pass


def os_problem(exc: OSError) -> str:
    """The OS's words for `exc` ("Permission denied", "Read-only file system", ...)."""
    return exc.strerror or type(exc).__name__


def _write_error(path: Path, exc: OSError) -> JnskrError:
    if exc.errno == errno.ENOTDIR or (exc.errno == errno.EEXIST and not Path(exc.filename or path).is_dir()):
        return JnskrError(f"{path}: cannot write there: {below_file(path) or 'a parent is not a folder'}")
    return JnskrError(f"{path}: cannot write ({os_problem(exc)})")


def below_file(path: Path) -> str | None:
    """'X is a file' for the first ancestor of `path` that exists and is not a folder (else None)."""
    for parent in reversed(Path(path).absolute().parents):
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file, not a folder"
    return None


def atomic_write(path: Path, write) -> None:
    """Create `path` through `write(tmp_path)` then a rename: never half-written.  An OS error
    (no space, no permission, a folder in the way) is a `JnskrError` naming `path`."""
    path = Path(path)
    if path.is_dir():
        raise JnskrError(f"{path}: is a folder, not a file")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=".tmp")
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise _write_error(path, exc) from None
    except BaseException:
        _discard(tmp)
        raise


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _discard(tmp: str | None) -> None:
    try:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    except OSError:
        pass


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def json_safe(obj):
    """`obj` with every NaN or infinite float as None: strict JSON (``null``), never a bare ``NaN``
    that other JSON readers refuse."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: Path, obj) -> None:
    """`obj` as strict JSON (non-finite numbers as null, `json_safe`), written atomically."""
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise JnskrError(f"{path}: not found (is this a jnskr run folder?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"{path}:{exc.lineno}" if isinstance(exc, json.JSONDecodeError) else str(path)
        raise JnskrError(f"{where}: invalid JSON ({getattr(exc, 'msg', exc)})") from None
    except OSError as exc:
        raise JnskrError(f"{path}: cannot read ({exc.strerror or exc})") from None


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    data = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(data, tmp))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise JnskrError(f"{path}: not found (is this a jnskr run folder?)")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own errors on corrupt headers
        raise JnskrError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0][:200]})") from None


def write_yaml(path: Path, obj) -> None:
    atomic_write_text(path, yaml.safe_dump(obj, sort_keys=False))


def read_yaml(path: Path):
    if not Path(path).is_file():
        raise JnskrError(f"{path}: not found (is this a jnskr run folder?)")
    return yamlsafe.loads(yamlsafe.read_file(path), str(path))


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


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo; the platform's description elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str, seed: int, fingerprint: str, extra: dict | None = None) -> dict:
    env = {
        "schema_version": RUN_SCHEMA_VERSION,
        "jnskr": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "device": device,
        "cuda": torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else None,
        "git_commit": git_commit(),
        "seed": seed,
        "dataset_fingerprint": fingerprint,
    }
    if extra:
        env.update(extra)
    return env


#: what a run writes into its folder (removed first when `--overwrite` reuses a folder)
RUN_FILES = ("model.safetensors", "structure.safetensors", "selection.safetensors", "config.yaml", "id_maps.json", "metrics.json",
             "log.jsonl", "environment.json", "status.json", "checkpoint", "checkpoint.new", "checkpoint.old")


def check_out(path: str | Path, overwrite: bool = False) -> None:
    """Refuse, before anything is loaded or trained, an `--out` that a run cannot be written to:
    a file, a path below a file, a folder holding a finished run, a non-empty folder (unless
    `overwrite`), or a place where no folder can be created.  Writes nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise JnskrError(f"{path}: is a file, not a folder; choose another --out")
    if (problem := below_file(path)) is not None:
        raise JnskrError(f"{path}: cannot create the run folder: {problem}")
    if path.is_dir():
        try:
            names = sorted(p.name for p in path.iterdir())
        except OSError as exc:
            raise JnskrError(f"{path}: cannot read the folder ({os_problem(exc)})") from None
        if "metrics.json" in names and not overwrite:
            raise JnskrError(f"{path}: already holds a finished run; choose another --out (or --overwrite)")
        if names and not overwrite:
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise JnskrError(f"{path}: folder is not empty ({len(names)} entries: {shown}); choose another --out "
                             f"or pass --overwrite to replace its run files")
    base = path if path.is_dir() else next(p for p in path.absolute().parents if p.exists())
    try:  # a folder can be made (and removed) there: catches read-only places and /proc
        os.rmdir(tempfile.mkdtemp(dir=base, prefix=".jnskr-probe-"))
    except OSError as exc:
        raise JnskrError(f"{path}: cannot create the run folder in {base} ({os_problem(exc)})") from None


class RunFolder:
    """The files of one run (see the module docstring).  Owns the layout; every write atomic."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def log_path(self) -> Path:
        return self.path / "log.jsonl"

    # writes
    def write_config(self, cfg: dict) -> None:
        write_yaml(self.file("config.yaml"), cfg)

    def write_ids(self, ids: dict) -> None:
        write_json(self.file("id_maps.json"), ids)

    def write_environment(self, env: dict) -> None:
        write_json(self.file("environment.json"), env)

    def write_status(self, status: str, **extra) -> None:
        write_json(self.file("status.json"), {"status": status, **extra})

    def write_metrics(self, metrics: dict) -> None:
        write_json(self.file("metrics.json"), metrics)

    def save_model(self, state: dict[str, torch.Tensor]) -> None:
        save_tensors(self.file("model.safetensors"), state)

    def save_structure(self, tensors: dict[str, torch.Tensor]) -> None:
        save_tensors(self.file("structure.safetensors"), tensors)

    def append_log(self, record: dict) -> None:
        """Add one line to log.jsonl: appended by one write(2) of the whole line (O_APPEND), so
        the cost does not grow with the file and no earlier line is rewritten.  A line a killed
        writer left without its newline is ended first, so the new record starts a line."""
        line = (json.dumps(record) + "\n").encode()
        try:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                if os.fstat(fd).st_size and not _ends_with_newline(self.log_path):
                    line = b"\n" + line
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _write_error(self.log_path, exc) from None

    def truncate_log(self, epochs: int) -> None:
        """Keep the first `epochs` lines of log.jsonl (epochs after a checkpoint are replayed)."""
        if self.log_path.is_file():
            lines = self.log_path.read_text().splitlines(keepends=True)[:epochs]
            atomic_write_text(self.log_path, "".join(lines))

    # creation
    def create(self, write_first) -> None:
        """Make the run folder with its first files (`write_first(folder)`), all at once: they
        are written into a temporary folder beside it, which is then renamed into place.  A
        folder that holds files already (the CLI allows that only with `--overwrite`, see
        `check_out`) is written in place, its earlier run files removed first."""
        if self.path.is_dir() and any(self.path.iterdir()):
            for name in RUN_FILES:
                p = self.file(name)
                try:
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
                except OSError as exc:
                    raise JnskrError(f"{p}: cannot remove ({os_problem(exc)})") from None
            write_first(self)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(self.path)
            tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=_tmp_prefix(self.path), suffix=".tmp"))
        except OSError as exc:
            raise _write_error(self.path, exc) from None
        try:
            os.chmod(tmp, 0o777 & ~_UMASK)
            write_first(RunFolder(tmp))
            os.replace(tmp, self.path)  # onto a missing or empty folder
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _write_error(self.path, exc) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    # reads
    def read_config(self) -> dict:
        return read_yaml(self.file("config.yaml"))

    def read_ids(self) -> dict:
        return read_json(self.file("id_maps.json"))

    def read_status(self) -> dict:
        st = read_json(self.file("status.json"))
        if not isinstance(st, dict):
            raise JnskrError(f"{self.file('status.json')}: expected a JSON object")
        return st

    def read_environment(self) -> dict:
        env = read_json(self.file("environment.json")) if self.file("environment.json").is_file() else {}
        return env if isinstance(env, dict) else {}

    def read_metrics(self) -> dict:
        return read_json(self.file("metrics.json")) if self.file("metrics.json").is_file() else {}

    def load_model(self) -> dict[str, torch.Tensor]:
        return load_tensors(self.file("model.safetensors"))

    def load_structure(self) -> dict[str, torch.Tensor]:
        return load_tensors(self.file("structure.safetensors"))
