"""Output files and folders that may belong to the user: a command replaces only what it wrote.

Every command that writes a file where the user points it (`jnskr tune --out`, `jnskr report`,
`jnskr export-embeddings --output`) checks, before any work, that each file it will write is
either absent or its own -- recognised by a mark it leaves (a header line, PNG metadata, a
manifest naming the files) -- and refuses otherwise with one line, unless ``--overwrite`` is
given.  An input of the command (the ``--config`` a search starts from, the study database, the
search space) is never an output, ``--overwrite`` or not.  The files themselves are written
through a temporary file and a rename (`jnskr.runs.atomic_write`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable

from jnskr.errors import JnskrError
from jnskr.runs import below_file

__all__ = ["same_file", "check_file_out", "starts_with", "contains", "is_run_folder", "check_folder_out"]


def same_file(a: str | Path, b: str | Path | None) -> bool:
    if b is None:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def starts_with(mark: str) -> Callable[[Path], bool]:
    """Ownership test: the file's text begins with `mark`."""
    def ours(path: Path) -> bool:
        try:
            with open(path, "rb") as f:
                return f.read(len(mark.encode())) == mark.encode()
        except OSError:
            return False
    return ours


def contains(mark: bytes, head: int = 4096) -> Callable[[Path], bool]:
    """Ownership test: `mark` occurs in the file's first `head` bytes (PNG metadata)."""
    def ours(path: Path) -> bool:
        try:
            with open(path, "rb") as f:
                return mark in f.read(head)
        except OSError:
            return False
    return ours


def check_file_out(path: str | Path, ours: Callable[[Path], bool], option: str, overwrite: bool = False,
                   inputs: Iterable[tuple[str, str | Path | None]] = ()) -> Path:
    """Refuse, before any work, an output file that is an input of the command, a folder, below
    a file, or an existing file the command did not write (unless `overwrite`)."""
    path = Path(path)
    for name, src in inputs:
        if src is not None and Path(src).exists() and same_file(path, src):
            raise JnskrError(f"{option} {path}: is the {name} this command reads; choose another {option}")
    if path.is_dir():
        raise JnskrError(f"{option} {path}: is a folder; give a file name")
    if (problem := below_file(path)) is not None:
        raise JnskrError(f"{option} {path}: cannot write there: {problem}")
    if (path.exists() or path.is_symlink()) and not overwrite and not ours(path):
        raise JnskrError(f"{option} {path}: exists and was not written by jnskr; choose another {option} "
                         "(or pass --overwrite to replace it)" if overwrite is not None else
                         f"{option} {path}: exists and was not written by jnskr; choose another {option} "
                         "(or remove it)")
    return path


def is_run_folder(path: str | Path) -> bool:
    """Whether `path` is a folder jnskr made for a run: its status.json or environment.json is
    one jnskr writes (`jnskr.runs`)."""
    path = Path(path)
    for name, key in (("status.json", "status"), ("environment.json", "jnskr")):
        try:
            obj = json.loads((path / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(obj, dict) and key in obj:
            return True
    return False


def check_folder_out(folder: str | Path, names: Iterable[str], owned: set[str], option: str,
                     overwrite: bool = False) -> Path:
    """Refuse, before any work, an output folder where a file of `names` exists that is not in
    `owned` (what an earlier run of the same command wrote there), unless `overwrite`."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise JnskrError(f"{option} {folder}: exists and is not a folder")
    if (problem := below_file(folder)) is not None:
        raise JnskrError(f"{option} {folder}: cannot write there: {problem}")
    if not folder.is_dir() or overwrite:
        return folder
    foreign = sorted(n for n in names if ((folder / n).exists() or (folder / n).is_symlink()) and n not in owned)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise JnskrError(f"{option} {folder}: holds {len(foreign)} file(s) this command would replace and did not "
                         f"write ({shown}); choose another {option} or pass --overwrite")
    return folder
