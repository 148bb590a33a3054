"""Dataset readers: KGAT folders, RecBole atomic files, plain TSV/CSV; format detection."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from jnskr.data.dataset import Dataset
from jnskr.data.parse import check_file, list_folder
from jnskr.data.readers.kgat import read_kgat
from jnskr.data.readers.recbole import read_recbole
from jnskr.data.readers.tsv import read_tsv
from jnskr.errors import DataError

FORMATS = ("kgat", "recbole", "tsv")

READERS: dict[str, Callable[..., Dataset]] = {"kgat": read_kgat, "recbole": read_recbole, "tsv": read_tsv}

_KGAT_MARKERS = ("train.txt", "test.txt", "kg_final.txt", "kg_final.txt.gz", "kg_final.txt.zip", "kg_feat.npz")


def detect_format(path: str | Path, options: dict | None = None) -> str:
    """``"kgat"``, ``"recbole"`` or ``"tsv"`` from the files present at ``path``.

    A folder with ``train.txt`` is KGAT; with a ``*.inter`` file RecBole; with
    ``interactions.tsv|csv`` (or an interactions file named in ``options["files"]``) TSV; a
    folder holding only other KGAT files (``test.txt``, ``kg_final.txt[.gz]``, ``kg_feat.npz``)
    is KGAT too, so that reading it names the missing ``train.txt``.  A file ending in
    ``.inter`` is RecBole, ``.tsv``/``.csv``/``.txt``/``.dat`` TSV.
    """
    p = Path(path)
    if (options or {}).get("files", {}).get("interactions"):
        return "tsv"
    if p.is_dir():
        names = set(list_folder(p))
        if "train.txt" in names:
            return "kgat"
        if any(n.endswith(".inter") for n in names):
            return "recbole"
        if names & {"interactions.tsv", "interactions.csv"}:
            return "tsv"
        if names & set(_KGAT_MARKERS):
            return "kgat"
        raise DataError(
            "cannot detect the format: expected train.txt (kgat), <name>.inter (recbole) "
            "or interactions.tsv|csv (tsv; or name the file: --interactions FILE)",
            str(p),
        )
    if not os.path.lexists(p):
        raise DataError("missing file or folder", str(p))
    check_file(p)  # a FIFO, a link loop, ...: say which
    if p.name.endswith(".inter"):
        return "recbole"
    if p.suffix.lower() in (".tsv", ".csv", ".txt", ".dat"):
        return "tsv"
    raise DataError("cannot detect the format of this file (expected .inter, .tsv, .csv or .dat)", str(p))


__all__ = ["FORMATS", "READERS", "detect_format", "read_kgat", "read_recbole", "read_tsv"]
