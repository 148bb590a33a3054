"""Dataset readers: KGAT folders, RecBole atomic files, plain TSV/CSV; format detection."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from jnskr.data.dataset import Dataset
from jnskr.data.readers.kgat import read_kgat
from jnskr.data.readers.recbole import read_recbole
from jnskr.data.readers.tsv import read_tsv
from jnskr.errors import DataError

FORMATS = ("kgat", "recbole", "tsv")

READERS: dict[str, Callable[..., Dataset]] = {"kgat": read_kgat, "recbole": read_recbole, "tsv": read_tsv}

_KGAT_MARKERS = ("train.txt", "test.txt", "kg_final.txt", "kg_final.txt.gz", "kg_final.txt.zip", "kg_feat.npz")


def detect_format(path: str | Path) -> str:
    """``"kgat"``, ``"recbole"`` or ``"tsv"`` from the files present at ``path``.

    A folder with ``train.txt`` is KGAT; with a ``*.inter`` file RecBole; with
    ``interactions.tsv|csv`` TSV; a folder holding only other KGAT files (``test.txt``,
    ``kg_final.txt[.gz]``, ``kg_feat.npz``) is KGAT too, so that reading it names the missing
    ``train.txt``.  A file ending in ``.inter`` is RecBole, ``.tsv``/``.csv``/``.txt`` TSV.
    """
    p = Path(path)
    if p.is_dir():
        names = {c.name for c in p.iterdir()}
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
            "or interactions.tsv|csv (tsv)",
            str(p),
        )
    if p.is_file():
        if p.name.endswith(".inter"):
            return "recbole"
        if p.suffix.lower() in (".tsv", ".csv", ".txt"):
            return "tsv"
        raise DataError("cannot detect the format of this file (expected .inter, .tsv or .csv)", str(p))
    raise DataError("missing file or folder", str(p))


__all__ = ["FORMATS", "READERS", "detect_format", "read_kgat", "read_recbole", "read_tsv"]
