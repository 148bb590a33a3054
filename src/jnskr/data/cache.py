"""On-disk cache of preprocessed datasets (.npz, no pickle).

A `Dataset` is stored as plain numpy arrays plus one JSON metadata string, so it loads with
``np.load(..., allow_pickle=False)``.  Cache files are keyed by `source_key`: a sha256 over the
source files' names and bytes, the format, the reader options and `CACHE_VERSION`; editing a
source file or changing an option gives a new key.  Writes are atomic (temp file in the same
folder, then ``os.replace``) and never go into the source folder.

Version 2 adds ``Interactions.values`` (``train_values`` / ``test_values``) and
``Dataset.provenance``; version-1 files (imports made before) still load, without them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from jnskr.data.arrays import Interactions, KnowledgeGraph
from jnskr.data.dataset import Dataset

#: bump when the readers' output for the same files changes
CACHE_VERSION = 3  # 3: confidence values divided by their train mean by default
#: versions `load_saved` still reads (imported datasets outlive a version bump)
READABLE = (1, 2, 3)

_KGAT_FILES = (
    "train.txt", "test.txt", "kg_final.txt", "kg_final.txt.gz", "kg_final.txt.zip", "kg_feat.npz",
    "user_list.txt", "item_list.txt", "entity_list.txt", "relation_list.txt",
)
_RECBOLE_EXT = (".inter", ".kg", ".link", ".item")


def source_files(path: Path, format: str, options: dict | None = None) -> list[Path]:  # noqa: A002
    """The files a reader of ``format`` reads at ``path`` (what the cache key hashes); ``options``
    may name more (``files``)."""
    path = Path(path)
    if path.is_file():
        if format == "recbole":
            folder = path.parent
            base = path.name.split(".")[0]
            return sorted(p for p in folder.iterdir() if p.is_file() and p.name.startswith(base + ".")
                          and p.name.endswith(_RECBOLE_EXT))
        named = [Path(v).expanduser() for v in (options or {}).get("files", {}).values() if v]
        return [path] + [p if p.is_absolute() else path.parent / p for p in named
                         if (p if p.is_absolute() else path.parent / p).is_file()]
    if format == "kgat":
        names = _KGAT_FILES
    elif format == "tsv":
        names = tuple(f"{stem}{s}" for stem in ("interactions", "test", "kg", "links", "names")
                      for s in (".tsv", ".csv"))
        named = [Path(v).expanduser() for v in (options or {}).get("files", {}).values() if v]
        extra = [p if p.is_absolute() else path / p for p in named]
        return [path / n for n in names if (path / n).is_file()] + [p for p in extra if p.is_file()]
    else:
        return sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(_RECBOLE_EXT))
    return [path / n for n in names if (path / n).is_file()]


def source_key(files: list[Path], format: str, options: dict) -> str:  # noqa: A002
    """sha256 (hex, 32 chars) of the files' names and bytes, the format and the options."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": CACHE_VERSION, "format": format, "options": options}, sort_keys=True, default=str).encode())
    for f in files:
        h.update(b"\0" + Path(f).name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:32]


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(type(v).__name__)


def dataset_arrays(ds: Dataset) -> dict[str, np.ndarray]:
    """``ds`` as a flat dict of arrays (string arrays as numpy unicode, never objects)."""
    meta = {
        "version": CACHE_VERSION, "name": ds.name, "n_users": ds.n_users, "n_items": ds.n_items,
        "source_hash": ds.source_hash, "stats": ds.stats, "warnings": ds.warnings, "provenance": ds.provenance,
        "kg": None if ds.kg is None else {"n_entities": ds.kg.n_entities, "n_relations": ds.kg.n_relations},
    }
    out = {
        "meta": np.array(json.dumps(meta, default=_json_default)),
        "train_indptr": ds.train.indptr, "train_indices": ds.train.indices,
        "test_indptr": ds.test.indptr, "test_indices": ds.test.indices,
    }
    for part in ("train", "test"):
        if getattr(ds, part).values is not None:
            out[f"{part}_values"] = np.asarray(getattr(ds, part).values, dtype=np.float64)
    for key in ("user_ids", "item_ids", "item_names"):
        if getattr(ds, key) is not None:
            out[key] = np.asarray(getattr(ds, key), dtype=str)
    if ds.kg is not None:
        out.update(kg_heads=ds.kg.heads, kg_relations=ds.kg.relations, kg_tails=ds.kg.tails)
        for key in ("relation_names", "entity_ids", "entity_names"):
            if getattr(ds.kg, key) is not None:
                out["kg_" + key] = np.asarray(getattr(ds.kg, key), dtype=str)
    return out


def save_dataset(ds: Dataset, path: Path) -> Path:
    """Write ``ds`` to ``path`` (.npz) atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **dataset_arrays(ds))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_saved(path: Path) -> Dataset | None:
    """Read a dataset written by `save_dataset`; ``None`` when the file is unreadable or stale."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if not isinstance(meta, dict) or meta.get("version") not in READABLE:
                return None
            a = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
    try:  # a corrupt `meta` (wrong keys or types): a stale cache, read the source again
        return _dataset(meta, a)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def _dataset(meta: dict, a: dict) -> Dataset:
    n_items = meta["n_items"]
    for split in ("train", "test"):  # the sizes in `meta` must fit the arrays
        ind = a[f"{split}_indices"]
        if len(a[f"{split}_indptr"]) != int(meta["n_users"]) + 1 or (len(ind) and int(ind.max()) >= int(n_items)):
            raise ValueError("meta does not fit the arrays")
    kg = None
    if meta["kg"] is not None:
        kg = KnowledgeGraph(
            heads=a["kg_heads"], relations=a["kg_relations"], tails=a["kg_tails"],
            n_entities=meta["kg"]["n_entities"], n_relations=meta["kg"]["n_relations"],
            relation_names=a.get("kg_relation_names"), entity_ids=a.get("kg_entity_ids"),
            entity_names=a.get("kg_entity_names"),
        )
    return Dataset(
        name=meta["name"], n_users=meta["n_users"], n_items=n_items,
        train=Interactions(a["train_indptr"], a["train_indices"], n_items, a.get("train_values")),
        test=Interactions(a["test_indptr"], a["test_indices"], n_items, a.get("test_values")),
        kg=kg, user_ids=a.get("user_ids"), item_ids=a.get("item_ids"), item_names=a.get("item_names"),
        source_hash=meta["source_hash"], stats=meta["stats"], warnings=meta["warnings"],
        provenance=meta.get("provenance", {}),
    )
