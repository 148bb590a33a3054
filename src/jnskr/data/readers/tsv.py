"""Reader for plain TSV/CSV interactions, with an optional triples file.

Layouts:

* a single file: ``user,item[,rating,timestamp]`` rows, split per user with
  `jnskr.data.split.ratio_split` (``test_ratio``, ``seed``);
* a folder with ``interactions.tsv`` or ``.csv`` (required), ``test.tsv|csv`` (optional: the
  given test set; else the seeded per-user split) and ``kg.tsv|csv`` (optional triples
  ``head relation tail``).

The delimiter is sniffed per file from its first non-blank line: a tab, else a comma, else
runs of whitespace.  A header line is recognised (and skipped) when one of its fields is a
known column name (``user``, ``user_id``, ``item``, ``head``, ...); with a header the user and
item columns are found by name, else they are the first two.  Extra columns (rating,
timestamp) are ignored: every row is a positive.

Ids are strings.  Users and items are numbered in ascending raw-id order (numeric when every id
is a decimal integer).  A KG entity whose raw id equals an item raw id **is** that item
(entity i = item i); the other entities follow, sorted; relations in sorted name order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jnskr.data.dataset import Dataset
from jnskr.data.readers.common import build_kg, csr_from_pairs, decode_lines, dense_ids, read_bytes, split_fields
from jnskr.data.split import ratio_split
from jnskr.data.validate import finish
from jnskr.errors import DataError

USER_COLS = ("user", "user_id", "userid", "uid")
ITEM_COLS = ("item", "item_id", "itemid", "iid", "movie_id", "movieid", "artist_id")
KG_COLS = ("head", "head_id", "relation", "relation_id", "tail", "tail_id")
OTHER_COLS = ("rating", "timestamp", "time", "weight", "score", "label")
_KNOWN = {c for group in (USER_COLS, ITEM_COLS, KG_COLS, OTHER_COLS) for c in group}
SUFFIXES = (".tsv", ".csv")


def sniff(line: str) -> str | None:
    """Delimiter of a line: tab, else comma, else None (whitespace)."""
    if "\t" in line:
        return "\t"
    if "," in line:
        return ","
    return None


def read_columns(path: Path, wanted: tuple[tuple[str, ...], ...]) -> list[np.ndarray]:
    """Read a delimited file; return one string array per group of ``wanted`` column names."""
    lines = decode_lines(read_bytes(path))
    first = next((k for k, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise DataError("empty file", str(path))
    sep = sniff(lines[first])
    head = [h.strip().lower() for h in (lines[first].split(sep) if sep else lines[first].split())]
    has_header = any(h.split(":")[0] in _KNOWN for h in head)
    cols = list(range(len(wanted)))
    if has_header:
        names = [h.split(":")[0] for h in head]
        for g, group in enumerate(wanted):
            hit = next((names.index(n) for n in group if n in names), None)
            if hit is not None:
                cols[g] = hit
        first += 1
    rows, nos = split_fields(lines[first:], sep, max(cols) + 1, path, first_line=first + 1, at_least=True)
    out = []
    for c in cols:
        vals = [r[c].strip() for r in rows]
        empty = [k for k, v in enumerate(vals) if not v]
        if empty:
            raise DataError(f"empty field {c + 1}", str(path), int(nos[empty[0]]))
        out.append(np.asarray(vals, dtype=str))
    return out


def _pick(folder: Path, stem: str) -> Path | None:
    return next((folder / f"{stem}{s}" for s in SUFFIXES if (folder / f"{stem}{s}").is_file()), None)


def read_tsv(
    path: str | Path,
    *,
    name: str | None = None,
    test_ratio: float = 0.2,
    seed: int = 2020,
) -> Dataset:
    """Read TSV/CSV interactions (+ optional test and triples files) into a validated `Dataset`."""
    path = Path(path)
    ui = (USER_COLS, ITEM_COLS)
    if path.is_dir():
        inter = _pick(path, "interactions")
        if inter is None:
            raise DataError("missing file: a TSV folder needs interactions.tsv or interactions.csv", str(path / "interactions.tsv"))
        test_path, kg_path = _pick(path, "test"), _pick(path, "kg")
        ds_name = name or path.resolve().name
    elif path.is_file():
        inter, test_path, kg_path = path, None, None
        ds_name = name or path.stem
    else:
        raise DataError("missing file or folder", str(path))

    tr_u, tr_i = read_columns(inter, ui)
    te_u, te_i = read_columns(test_path, ui) if test_path else (np.zeros(0, str), np.zeros(0, str))
    user_ids, ucode = dense_ids(np.concatenate([tr_u, te_u]))
    item_ids, icode = dense_ids(np.concatenate([tr_i, te_i]))
    n_users, n_items = len(user_ids), len(item_ids)
    n_tr = len(tr_u)
    stats: dict = {}
    if test_path:
        train = csr_from_pairs(ucode[:n_tr], icode[:n_tr], n_users, n_items)
        test = csr_from_pairs(ucode[n_tr:], icode[n_tr:], n_users, n_items)
        stats["duplicate_train_items"] = int(n_tr - train.nnz)
        stats["duplicate_test_items"] = int(len(te_u) - test.nnz)
    else:
        train, test = ratio_split(ucode, icode, n_users, n_items, test_ratio=test_ratio, seed=seed)
        stats["duplicate_train_items"] = int(n_tr - train.nnz - test.nnz)

    kg = None
    warnings: list[str] = []
    if kg_path is not None:
        h, r, t = read_columns(kg_path, (("head", "head_id"), ("relation", "relation_id"), ("tail", "tail_id")))
        kg, _ = build_kg(h, r, t, item_ids)
    ds = Dataset(
        name=ds_name,
        n_users=n_users,
        n_items=n_items,
        train=train,
        test=test,
        kg=kg,
        user_ids=user_ids,
        item_ids=item_ids,
        stats=stats,
        warnings=warnings,
    )
    return finish(ds)
