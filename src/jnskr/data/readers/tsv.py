"""Reader for plain delimited files: interactions, and optionally a test set, a KG, item -> entity
links and item names (docs/data.md has worked examples).

Layouts:

* a single file: the interactions, split per user (``split``, ``test_ratio``, ``seed``);
* a folder.  Its files, each ``.tsv`` or ``.csv`` unless named in ``files``:
  ``interactions`` (required), ``test`` (the given test set; else the split), ``kg``
  (``head relation tail`` triples), ``links`` (``item entity``: which KG entity each item is),
  ``names`` (``item name``).  ``files={"interactions": "user_artists.dat", ...}`` names them
  (relative to the folder).  Every other file in the folder is named in a warning.

Separators, headers and columns: `jnskr.data.table` (``separator``; ``columns`` maps
``user``, ``item``, ``weight``, ``timestamp``, ``head``, ``relation``, ``tail``,
``link_item``, ``link_entity``, ``name_item``, ``name`` to a header name or a 1-based
position).  Without a setting, a column is found by a known header name (`KNOWN`), else by
position: user 1, item 2; head 1, relation 2, tail 3; link item 1, entity 2; name item 1, name 2.
A first line of unknown names is still a header when it is one by type (a word above numbers,
`jnskr.data.table.header_by_type`); a warning says so.

The KG reaches items only through the links file, or with ``kg_ids="items"`` when the KG's
entity ids are the item ids; a KG with neither is a `DataError` naming the KG file and the links
file expected.  Weights, the split and the rest: `jnskr.data.assemble`.
"""

from __future__ import annotations

from pathlib import Path

from jnskr.data.assemble import Links, Names, Options, Pairs, Triples, assemble, no_link_error
from jnskr.data.dataset import Dataset
from jnskr.data.parse import check_file, present
from jnskr.data.table import Column, parse_numbers, parse_times, read_table
from jnskr.data.validate import unread_files
from jnskr.errors import DataError

SUFFIXES = (".tsv", ".csv")
ROLES = ("interactions", "test", "kg", "links", "names")
_ITEM = ("item", "item_id", "itemid", "iid", "movie_id", "movieid", "artist_id", "artistid", "product_id", "book_id",
         "product", "productid", "sku", "article", "article_id", "track_id", "song_id", "isbn", "asin")
KNOWN: dict[str, tuple[str, ...]] = {
    "user": ("user", "user_id", "userid", "uid", "customer", "customer_id", "customerid", "client", "client_id",
             "member_id", "visitor_id", "visitorid"),
    "item": _ITEM,
    "weight": ("rating", "weight", "score", "count", "plays", "playcount", "play_count", "label", "value",
               "confidence", "qty", "quantity", "amount", "clicks", "views", "purchases"),
    "timestamp": ("timestamp", "time", "ts", "datetime", "date"),
    "head": ("head", "head_id", "subject"),
    "relation": ("relation", "relation_id", "predicate"),
    "tail": ("tail", "tail_id", "object"),
    "link_item": _ITEM,
    "link_entity": ("entity", "entity_id", "entityid", "freebase_id", "kg_id"),
    "name_item": _ITEM,
    "name": ("name", "title", "item_name", "movie_title"),
}
DEFAULT_POS = {"user": 1, "item": 2, "head": 1, "relation": 2, "tail": 3, "link_item": 1, "link_entity": 2,
               "name_item": 1, "name": 2}
COLUMN_KEYS = tuple(KNOWN)


def _columns(keys: tuple[str, ...], spec: dict) -> list[Column]:
    return [Column(k, spec.get(k), KNOWN[k], DEFAULT_POS.get(k)) for k in keys]


def _find(folder: Path, role: str, files: dict) -> Path | None:
    """The file of ``role``: as named in ``files`` (must exist), else ``<role>.tsv|csv``."""
    if files.get(role):
        p = Path(files[role]).expanduser()
        p = p if p.is_absolute() else folder / p
        if not present(p):
            raise DataError(f"missing file (named as the {role} file)", str(p))
        return p
    return next((folder / f"{role}{s}" for s in SUFFIXES if present(folder / f"{role}{s}")), None)


def _header_note(t) -> list[str]:
    return [f"{Path(t.path).name}: {t.header_note}"] if t.header_note else []


def _pairs(path: Path, spec: dict, sep: str, *, timestamps: bool, use_weight: bool) -> tuple[Pairs, list[str]]:
    keys = ("user", "item", "weight") + (("timestamp",) if timestamps else ())
    cols = _columns(keys, spec)
    cols[2].empty_ok = not use_weight
    t = read_table(path, cols, sep, what="interactions")
    w = None
    if use_weight and "weight" in t.columns:
        w = parse_numbers(t.columns["weight"], t.lines, t.path, f"weight ({t.names['weight']})")
    ts = None if "timestamp" not in t.columns else parse_times(t.columns["timestamp"], t.lines, t.path)
    notes = [f"columns of {path.name} not read: {', '.join(t.unused)}"] if t.unused else []
    notes += _header_note(t)
    return Pairs(t.columns["user"], t.columns["item"], w, ts, t.path, t.lines, t.names.get("weight")), notes


def read_tsv(
    path: str | Path,
    *,
    name: str | None = None,
    files: dict | None = None,
    columns: dict | None = None,
    separator: str = "auto",
    weight: str = "ignore",
    weight_threshold: float | None = None,
    confidence_norm: str = "mean",
    confidence_transform: str = "none",
    kg_ids: str | None = None,
    split: str = "ratio",
    test_ratio: float = 0.2,
    seed: int = 2020,
    link_only: bool = False,
    max_memory: float | None = None,
) -> Dataset:
    """Read delimited files into a validated `Dataset` (see the module docstring)."""
    path = Path(path)
    files = {k: v for k, v in (files or {}).items() if v}
    spec = {k: v for k, v in (columns or {}).items() if v is not None}
    for k in files:
        if k not in ROLES:
            raise DataError(f"unknown file role {k!r} (expected one of {', '.join(ROLES)})", str(path))
    for k in spec:
        if k not in COLUMN_KEYS:
            raise DataError(f"unknown column {k!r} (expected one of {', '.join(COLUMN_KEYS)})", str(path))
    opts = Options(weight=weight, weight_threshold=weight_threshold, confidence_norm=confidence_norm,
                   confidence_transform=confidence_transform,
                   kg_ids=kg_ids, split=split,
                   test_ratio=test_ratio, seed=seed, link_only=link_only, max_memory=max_memory)
    if path.is_dir():
        folder = path
        found = {r: _find(folder, r, files) for r in ROLES}
        if found["interactions"] is None:
            raise DataError("missing file: a TSV folder needs interactions.tsv or interactions.csv (or name the "
                            "file: --interactions FILE, data.files.interactions)", str(folder / "interactions.tsv"))
        ds_name = name or folder.resolve().name
    else:
        check_file(path)
        folder = path.parent
        found = {r: (_find(folder, r, files) if r != "interactions" and files.get(r) else None) for r in ROLES}
        found["interactions"] = path
        ds_name = name or path.stem
    if found["kg"] is not None and found["links"] is None and kg_ids != "items":
        raise no_link_error(str(found["kg"]), f"{folder / 'links.tsv'} (or --links FILE, data.files.links)")
    wants_time = split in ("time", "leave_one_out") and found["test"] is None
    use_weight = weight != "ignore"
    train, notes = _pairs(found["interactions"], spec, separator, timestamps=wants_time, use_weight=use_weight)
    test = None
    if found["test"] is not None:
        test, test_notes = _pairs(found["test"], spec, separator, timestamps=False, use_weight=use_weight)
        notes += [n for n in test_notes if n.startswith(found["test"].name + ": ")]
    kg = links = names = None
    names_read = None
    if found["kg"] is not None:
        t = read_table(found["kg"], _columns(("head", "relation", "tail"), spec), separator, what="triples")
        kg = Triples(t.columns["head"], t.columns["relation"], t.columns["tail"], t.path)
        notes += _header_note(t)
    if found["links"] is not None:
        if found["kg"] is None:
            raise DataError("a links file without a KG file (kg.tsv, or --kg FILE)", str(found["links"]))
        t = read_table(found["links"], _columns(("link_item", "link_entity"), spec), separator, what="links")
        links = Links(t.columns["link_item"], t.columns["link_entity"], t.path, t.lines)
        notes += _header_note(t)
    if found["names"] is not None:
        t = read_table(found["names"], _columns(("name_item", "name"), spec), separator, what="names")
        names = Names(t.columns["name_item"], t.columns["name"], t.path)
        notes += _header_note(t)
        names_read = {"file": found["names"].name, "item": t.names["name_item"], "name": t.names["name"],
                      "unused": list(t.unused)}
    warnings = list(notes)
    used = {r: p.name for r, p in found.items() if p is not None}
    if path.is_dir():
        warnings += unread_files(folder, {p.name for p in found.values() if p is not None and p.parent == folder})
    provenance = {"format": "tsv", "files": used}
    if names_read is not None:
        provenance["names"] = names_read  # `data validate` says what of it was read
    return assemble(Dataset, name=ds_name, train=train, test=test, kg=kg, links=links, names=names, opts=opts,
                    warnings=warnings, provenance=provenance, source=str(found["interactions"]))

