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

The header's id columns must have type ``token``; a missing or mistyped id column, or a header
whose fields are separated by spaces instead of tabs, is a `DataError` naming the file and line
1.  Every row has exactly the header's number of fields.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jnskr.data.assemble import Links, Names, Options, Pairs, Triples, assemble
from jnskr.data.dataset import Dataset
from jnskr.data.parse import decode_lines, list_folder, present, read_bytes
from jnskr.data.table import Column, parse_numbers, parse_times, read_table
from jnskr.data.validate import unread_files
from jnskr.errors import DataError

TYPES = ("token", "token_seq", "float", "float_seq")
_BENCH = (".train.inter", ".valid.inter", ".test.inter")


def parse_header(line: str, path: Path) -> dict[str, tuple[int, str]]:
    """``name:type`` fields -> {name: (column, type)}; a bad field is a `DataError` at line 1."""
    cols: dict[str, tuple[int, str]] = {}
    for k, field in enumerate(line.split("\t")):
        field = field.strip()
        if len(field.split()) > 1 and sum(":" in f for f in field.split()) > 1:
            raise DataError(f"header fields separated by spaces ({field[:40]!r}): RecBole atomic files separate "
                            f"fields with tabs", str(path), 1)
        name, sep, typ = field.rpartition(":")
        if not sep or not name:
            raise DataError(f"header field {field!r} is not name:type", str(path), 1)
        if typ not in TYPES:
            raise DataError(f"header field {field!r}: unknown type {typ!r} (expected one of {', '.join(TYPES)})", str(path), 1)
        if name in cols:
            raise DataError(f"header field {name!r} appears twice", str(path), 1)
        cols[name] = (k, typ)
    return cols


def read_atomic(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Read an atomic file; return its ``required`` token columns (and the ``optional`` ones the
    header has, empty fields allowed) as string arrays, plus ``"_lines"``.  Every required
    column must exist with type ``token``."""
    lines = decode_lines(read_bytes(path))
    header = parse_header(lines[0], path)
    for col in required:
        if col not in header:
            have = ", ".join(f"{n}:{t}" for n, (_, t) in header.items())
            raise DataError(f"missing column {col}:token (header has {have})", str(path), 1)
        if header[col][1] != "token":
            raise DataError(f"column {col} has type {header[col][1]}, expected token", str(path), 1)
    cols = [Column(c, c) for c in required] + [Column(c, c, empty_ok=True) for c in optional
                                               if c in header and c not in required]
    what = {".inter": "interactions", ".kg": "triples", ".link": "links", ".item": "items"}.get(path.suffix, "rows")
    t = read_table(path, cols, "tab", what=what, exact=True, lines=lines)
    out = dict(t.columns)
    out["_lines"] = t.lines
    return out


def _find_base(folder: Path) -> tuple[Path, str]:
    """The folder and the atomic files' base name."""
    if not folder.is_dir():
        present(folder) or _raise_missing(folder)
        name = folder.name
        for suf in _BENCH + (".inter",):
            if name.endswith(suf):
                return folder.parent, name[: -len(suf)]
        raise DataError("not a RecBole .inter file", str(folder))
    if present(folder / f"{folder.name}.inter") or present(folder / f"{folder.name}.train.inter"):
        return folder, folder.name
    bases: set[str] = set()
    for n in list_folder(folder):
        suf = next((s for s in _BENCH + (".inter",) if n.endswith(s)), None)
        if suf is not None:
            bases.add(n[: -len(suf)])
    if not bases:
        raise DataError("no .inter file: a RecBole folder needs <name>.inter", str(folder))
    if len(bases) > 1:
        raise DataError(f"several datasets in one folder ({', '.join(sorted(bases))}): pass the .inter file", str(folder))
    return folder, bases.pop()


def _raise_missing(path: Path) -> bool:
    raise DataError("missing file or folder", str(path))


def _title_column(header: dict[str, tuple[int, str]]) -> str | None:
    seqs = [n for n, (_, t) in header.items() if t == "token_seq"]
    for n in seqs:
        if "title" in n.lower() or "name" in n.lower():
            return n
    return seqs[0] if seqs else None


def _pairs(path: Path, weight_col: str, time_col: str | None, use_weight: bool) -> Pairs:
    c = read_atomic(path, ("user_id", "item_id"), (weight_col,) + ((time_col,) if time_col else ()))
    w = parse_numbers(c[weight_col], c["_lines"], str(path), weight_col) if use_weight and weight_col in c else None
    t = parse_times(c[time_col], c["_lines"], str(path)) if time_col and time_col in c else None
    return Pairs(c["user_id"], c["item_id"], w, t, str(path), c["_lines"], weight_col if weight_col in c else None)


def read_recbole(
    path: str | Path,
    *,
    name: str | None = None,
    link_only: bool = False,
    test_ratio: float = 0.2,
    seed: int = 2020,
    split: str = "ratio",
    weight: str = "ignore",
    weight_threshold: float | None = None,
    confidence_norm: str = "mean",
    confidence_transform: str = "none",
    kg_ids: str | None = None,
    columns: dict | None = None,
    max_memory: float | None = None,
) -> Dataset:
    """Read RecBole atomic files into a validated `Dataset` (see the module docstring)."""
    folder, base = _find_base(Path(path))
    f = lambda ext: folder / f"{base}{ext}"  # noqa: E731
    spec = {k: v for k, v in (columns or {}).items() if v is not None}
    unknown = set(spec) - {"weight", "timestamp"}
    if unknown:
        raise DataError(f"columns {', '.join(sorted(unknown))} cannot be set for RecBole files (user_id and "
                        f"item_id are fixed; weight and timestamp can be named)", str(folder))
    opts = Options(weight=weight, weight_threshold=weight_threshold, confidence_norm=confidence_norm,
                   confidence_transform=confidence_transform,
                   kg_ids=kg_ids, split=split,
                   test_ratio=test_ratio, seed=seed, link_only=link_only, max_memory=max_memory)
    weight_col, time_col = str(spec.get("weight", "rating")), str(spec.get("timestamp", "timestamp"))
    bench = present(f(".train.inter")) and present(f(".test.inter"))
    read: set[str] = set()
    if bench:
        parts = {p: _pairs(f(f".{p}.inter"), weight_col, None, weight != "ignore") for p in ("train", "valid", "test")
                 if present(f(f".{p}.inter"))}
        read |= {f"{base}.{p}.inter" for p in parts}
        train = parts["train"]
        if "valid" in parts:  # valid is merged into train: the trainer holds out its own part
            v = parts["valid"]
            cat = lambda a, b: None if a is None or b is None else np.concatenate([a, b])  # noqa: E731
            train = Pairs(np.concatenate([train.users, v.users]), np.concatenate([train.items, v.items]),
                          cat(train.weights, v.weights), None, train.source, cat(train.lines, v.lines),
                          train.weight_name)
        test = parts["test"]
    else:
        wants_time = split in ("time", "leave_one_out")
        train, test = _pairs(f(".inter"), weight_col, time_col if wants_time else None, weight != "ignore"), None
        read.add(f"{base}.inter")
    kg = links = names = None
    if present(f(".kg")):
        c = read_atomic(f(".kg"), ("head_id", "relation_id", "tail_id"))
        kg = Triples(c["head_id"], c["relation_id"], c["tail_id"], str(f(".kg")))
        read.add(f"{base}.kg")
    if present(f(".link")):
        c = read_atomic(f(".link"), ("item_id", "entity_id"))
        links = Links(c["item_id"], c["entity_id"], str(f(".link")), c["_lines"])
        read.add(f"{base}.link")
    if link_only and (kg is None or links is None):
        raise DataError(f"link_only needs {base}.kg and {base}.link", str(folder))
    if kg is not None and links is None and kg_ids != "items":
        raise DataError(f"a KG reaches the items only through {base}.link (item_id:token entity_id:token), "
                        f"expected {f('.link')}, or with data.kg_ids: items (--kg-ids items) when the KG's "
                        f"entity ids are item ids", str(f(".kg")))
    if links is not None and kg is None:
        links = None  # a .link without a .kg links to nothing
    if present(f(".item")):
        names = _names(f(".item"))
        read.add(f"{base}.item")
    warnings = unread_files(folder, read) if Path(path).is_dir() else []
    return assemble(Dataset, name=name or base, train=train, test=test, kg=kg, links=links, names=names,
                    opts=opts, warnings=warnings, provenance={"format": "recbole", "files": sorted(read)},
                    source=train.source)


def _names(path: Path) -> Names | None:
    lines = decode_lines(read_bytes(path))
    header = parse_header(lines[0], path)
    col = _title_column(header)
    if "item_id" not in header or col is None:
        return None
    c = read_atomic(path, (), ("item_id", col))
    if "item_id" not in c or col not in c:
        return None
    return Names(c["item_id"], c[col], str(path))
