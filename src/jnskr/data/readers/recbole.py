"""Reader for RecBole atomic files (``.inter``, ``.kg``, ``.link``, ``.item``).

A folder holds ``<name>.inter`` (tab-separated, typed header ``field:type`` with types
``token``, ``token_seq``, ``float``, ``float_seq``) and optionally:

* ``<name>.kg``: ``head_id:token  relation_id:token  tail_id:token``;
* ``<name>.link``: ``item_id:token  entity_id:token`` (item -> KG entity);
* ``<name>.item``: item features; the first ``token_seq`` column named like a title
  (``*title*``, ``*name*``; else the first ``token_seq``) gives ``Dataset.item_names``.

Split: with RecBole's benchmark files ``<name>.train.inter`` / ``<name>.valid.inter`` /
``<name>.test.inter`` the given split is used and **valid is merged into train** (the trainer
holds out its own validation part with `jnskr.data.split.holdout_split`).  Otherwise
``<name>.inter`` is split per user with `jnskr.data.split.ratio_split` (``test_ratio``,
``seed``; defaults 0.2 and 2020).

Numbering: raw ids are strings.  Users and items are numbered in ascending raw-id order
(numeric when every id is a decimal integer, else lexicographic).  Item i is entity i: through
``.link`` when present, else an entity whose raw id equals the item's raw id.  The other KG
entities follow, **sorted** (deterministic, independent of file order); relations are numbered
in sorted name order.  Triples keep the ``.kg`` file order.  Every interaction is a positive
(ratings are ignored).  ``link_only=True`` keeps only interactions whose item links to an
entity that occurs in the KG (how ml-100k is built).

The header's id columns must have type ``token``; a missing or mistyped id column is a
`DataError` naming the file and line 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jnskr.data.dataset import Dataset
from jnskr.data.readers.common import build_kg, csr_from_pairs, decode_lines, dense_ids, read_bytes, split_fields
from jnskr.data.split import ratio_split
from jnskr.data.validate import finish
from jnskr.errors import DataError

TYPES = ("token", "token_seq", "float", "float_seq")
_BENCH = (".train.inter", ".valid.inter", ".test.inter")


def parse_header(line: str, path: Path) -> dict[str, tuple[int, str]]:
    """``name:type`` fields -> {name: (column, type)}; a bad field is a `DataError` at line 1."""
    cols: dict[str, tuple[int, str]] = {}
    for k, field in enumerate(line.split("\t")):
        field = field.strip()
        name, sep, typ = field.rpartition(":")
        if not sep or not name:
            raise DataError(f"header field {field!r} is not name:type", str(path), 1)
        if typ not in TYPES:
            raise DataError(f"header field {field!r}: unknown type {typ!r} (expected one of {', '.join(TYPES)})", str(path), 1)
        if name in cols:
            raise DataError(f"header field {name!r} appears twice", str(path), 1)
        cols[name] = (k, typ)
    return cols


def read_atomic(path: Path, required: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read an atomic file; return its ``required`` token columns as string arrays.

    Every required column must exist with type ``token``.
    """
    lines = decode_lines(read_bytes(path))
    header = parse_header(lines[0], path)
    for col in required:
        if col not in header:
            have = ", ".join(f"{n}:{t}" for n, (_, t) in header.items())
            raise DataError(f"missing column {col}:token (header has {have})", str(path), 1)
        if header[col][1] != "token":
            raise DataError(f"column {col} has type {header[col][1]}, expected token", str(path), 1)
    rows, nos = split_fields(lines[1:], "\t", len(header), path, first_line=2)
    out: dict[str, np.ndarray] = {}
    for col in required:
        j = header[col][0]
        vals = [r[j].strip() for r in rows]
        empty = [k for k, v in enumerate(vals) if not v]
        if empty:
            raise DataError(f"empty {col}", str(path), int(nos[empty[0]]))
        out[col] = np.asarray(vals, dtype=str)
    return out


def _find_base(folder: Path) -> tuple[Path, str]:
    """The folder and the atomic files' base name."""
    if folder.is_file():
        name = folder.name
        for suf in _BENCH + (".inter",):
            if name.endswith(suf):
                return folder.parent, name[: -len(suf)]
        raise DataError("not a RecBole .inter file", str(folder))
    if not folder.is_dir():
        raise DataError("missing file or folder", str(folder))
    if (folder / f"{folder.name}.inter").is_file() or (folder / f"{folder.name}.train.inter").is_file():
        return folder, folder.name
    bases: set[str] = set()
    for p in folder.iterdir():
        suf = next((s for s in _BENCH + (".inter",) if p.name.endswith(s)), None)
        if suf is not None:
            bases.add(p.name[: -len(suf)])
    if not bases:
        raise DataError("no .inter file: a RecBole folder needs <name>.inter", str(folder))
    if len(bases) > 1:
        raise DataError(f"several datasets in one folder ({', '.join(sorted(bases))}): pass the .inter file", str(folder))
    return folder, bases.pop()


def _title_column(header: dict[str, tuple[int, str]]) -> str | None:
    seqs = [n for n, (_, t) in header.items() if t == "token_seq"]
    for n in seqs:
        if "title" in n.lower() or "name" in n.lower():
            return n
    return seqs[0] if seqs else None


def read_recbole(
    path: str | Path,
    *,
    name: str | None = None,
    link_only: bool = False,
    test_ratio: float = 0.2,
    seed: int = 2020,
) -> Dataset:
    """Read RecBole atomic files into a validated `Dataset` (see the module docstring)."""
    folder, base = _find_base(Path(path))
    f = lambda ext: folder / f"{base}{ext}"  # noqa: E731
    ids = ("user_id", "item_id")
    bench = f(".train.inter").is_file() and f(".test.inter").is_file()
    parts: dict[str, dict[str, np.ndarray]] = {}
    if bench:
        for part in ("train", "valid", "test"):
            if f(f".{part}.inter").is_file():
                parts[part] = read_atomic(f(f".{part}.inter"), ids)
    else:
        parts["all"] = read_atomic(f(".inter"), ids)
    warnings: list[str] = []

    kg_cols = link_cols = None
    if f(".kg").is_file():
        kg_cols = read_atomic(f(".kg"), ("head_id", "relation_id", "tail_id"))
    if f(".link").is_file():
        link_cols = read_atomic(f(".link"), ("item_id", "entity_id"))

    link: dict[str, str] = {}
    if link_cols is not None:
        link = dict(zip(link_cols["item_id"].tolist(), link_cols["entity_id"].tolist()))
    if link_only:
        if kg_cols is None or link_cols is None:
            raise DataError(f"link_only needs {base}.kg and {base}.link", str(folder))
        in_kg = set(kg_cols["head_id"].tolist()) | set(kg_cols["tail_id"].tolist())
        keep_items = np.asarray(sorted(i for i, e in link.items() if e in in_kg), dtype=str)
        n_before = sum(len(p["item_id"]) for p in parts.values())
        for p in parts.values():
            m = np.isin(p["item_id"], keep_items)
            for c in ids:
                p[c] = p[c][m]
        dropped = n_before - sum(len(p["item_id"]) for p in parts.values())
        if dropped:
            warnings.append(f"link_only: {dropped:,} interactions of items without a KG entity dropped")

    all_users = np.concatenate([p["user_id"] for p in parts.values()])
    all_items = np.concatenate([p["item_id"] for p in parts.values()])
    user_ids, ucode = dense_ids(all_users)
    item_ids, icode = dense_ids(all_items)
    n_users, n_items = len(user_ids), len(item_ids)
    stats: dict = {}
    if bench:
        sizes = np.cumsum([len(p["user_id"]) for p in parts.values()])[:-1]
        chunks = dict(zip(parts, zip(np.split(ucode, sizes), np.split(icode, sizes))))
        tr_u = np.concatenate([chunks[k][0] for k in ("train", "valid") if k in chunks])
        tr_i = np.concatenate([chunks[k][1] for k in ("train", "valid") if k in chunks])
        train = csr_from_pairs(tr_u, tr_i, n_users, n_items)
        test = csr_from_pairs(*chunks["test"], n_users, n_items)
        stats["duplicate_train_items"] = int(len(tr_u) - train.nnz)
        stats["duplicate_test_items"] = int(len(chunks["test"][0]) - test.nnz)
    else:
        train, test = ratio_split(ucode, icode, n_users, n_items, test_ratio=test_ratio, seed=seed)
        stats["duplicate_train_items"] = int(len(ucode) - train.nnz - test.nnz)

    kg = None
    if kg_cols is not None:
        if link_cols is not None:
            item_entity = np.asarray([link.get(i, "") for i in item_ids.tolist()], dtype=str)
        else:
            item_entity = item_ids
        kg, shared = build_kg(kg_cols["head_id"], kg_cols["relation_id"], kg_cols["tail_id"], item_entity)
        if shared:
            warnings.append(f"{shared} items link to an entity already linked to another item")

    item_names = None
    if f(".item").is_file():
        lines = decode_lines(read_bytes(f(".item")))
        header = parse_header(lines[0], f(".item"))
        col = _title_column(header)
        if "item_id" in header and col is not None:
            rows, _ = split_fields(lines[1:], "\t", len(header), f(".item"), first_line=2)
            j, t = header["item_id"][0], header[col][0]
            titles = {r[j].strip(): r[t] for r in rows}
            item_names = np.asarray([titles.get(i, "") for i in item_ids.tolist()], dtype=str)

    ds = Dataset(
        name=name or base,
        n_users=n_users,
        n_items=n_items,
        train=train,
        test=test,
        kg=kg,
        user_ids=user_ids,
        item_ids=item_ids,
        item_names=item_names,
        stats=stats,
        warnings=warnings,
    )
    return finish(ds)
