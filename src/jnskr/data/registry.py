"""Loading datasets by name or path, through the cache; importing; listing.

`load_dataset(name_or_path, format, **options)` is the entry point: a name is looked up among
imported datasets (``<data>/<name>/dataset.npz``), then in the catalogue
(`jnskr.data.catalogue.REGISTRY`; ``ml-100k`` is fetched on demand, the KGAT sets fail offline
with a hint to ``jnskr data import``); anything else is a path read by the reader of its
(given or detected) format, with ``options`` (the ``data.*`` reader keys, see
`jnskr.data.config.DataConfig.reader_options`) passed on.  An option that the format's reader
does not take is a `DataError`.  Any `OSError` on the way is a one-line `DataError` naming
the path.  Warnings are logged once per load on the ``jnskr`` logger (``log_warnings=False``:
not at all; ``jnskr data validate`` prints them itself).

The catalogue and the data folder: `jnskr.data.catalogue`; downloads: `jnskr.data.download`.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from jnskr.data.cache import load_saved, save_dataset, source_files, source_key
from jnskr.data.catalogue import (  # noqa: F401  (re-exported: the registry's public names)
    DEFAULT_DATASET,
    IMPORTED_FILE,
    KGAT_BASE_URL,
    ML100K_MEMBERS,
    RECBOLE_VERSION,
    REGISTRY,
    DatasetInfo,
    RemoteFile,
    check_name,
    data_dir,
    dataset_dir,
    git_blob_id,
    imported_names,
    is_fetched,
    is_imported,
    is_name,
)
from jnskr.data.dataset import Dataset
from jnskr.data.download import download_kgat, extract_wheel, fetch_ml100k  # noqa: F401
from jnskr.data.readers import FORMATS, READERS, detect_format
from jnskr.errors import DataError, JnskrError

log = logging.getLogger("jnskr")


def os_errors(fn):
    """Turn an `OSError` raised by ``fn`` into a one-line `DataError` naming the path."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OSError as exc:
            raise DataError(exc.strerror or str(exc), exc.filename if exc.filename is not None else None) from None
    return wrapper


def fetch(name: str, *, base_url: str | None = None, force: bool = False) -> Path:
    """Make a registered dataset's raw files present in ``<data>/<name>``; return that folder."""
    if name not in REGISTRY:
        raise JnskrError(f"unknown dataset {name!r}: registered are {', '.join(REGISTRY)}")
    if is_fetched(name) and not force:
        return dataset_dir(name)
    info = REGISTRY[name]
    log.info("fetching %s into %s from %s; licence: %s", name, dataset_dir(name), source_of(name), info.licence)
    if name == "ml-100k":
        return fetch_ml100k(dataset_dir(name))
    return download_kgat(name, dataset_dir(name), base_url=base_url or KGAT_BASE_URL)


def source_of(name: str, base_url: str | None = None) -> str:
    """Where a registered dataset's files come from, in words."""
    if name == "ml-100k":
        return (f"the recbole {RECBOLE_VERSION} wheel on PyPI (its dataset_example/ml-100k files, "
                "sha256-checked; MovieLens by GroupLens, Freebase links by KB4Rec)")
    return f"{(base_url or KGAT_BASE_URL).rstrip('/')}/{name}/ (the KGAT repository; git-blob-checked)"


def cache_path(path: Path, fmt: str, name: str | None, options: dict) -> tuple[str, Path]:
    """(key, ``<data>/cache/<key>.npz``) for reading ``path``; key ``""`` when it has no files."""
    files = source_files(path, fmt, options) if Path(path).exists() else []
    listing = sorted(p.name for p in Path(path).iterdir()) if Path(path).is_dir() else []  # "file not read" warnings
    key = source_key(files, fmt, {**options, "name": name, "listing": listing}) if files else ""
    return key, data_dir() / "cache" / f"{key}.npz"


def _check_options(fmt: str, reader, options: dict, path: Path) -> None:
    params = inspect.signature(reader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # a wrapper: the reader behind it checks
    extra = sorted(k for k in options if k not in params)
    if extra:
        raise DataError(f"option {', '.join(extra)} does not apply to the {fmt} format", str(path))


@os_errors
def read_cached(path: Path, format: str | None = None, *, cache: bool = True, name: str | None = None,  # noqa: A002
                **options) -> Dataset:
    """Read ``path`` with a reader, through the ``<data>/cache`` npz cache."""
    path = Path(path)
    fmt = format or detect_format(path, options)
    if fmt not in READERS:
        raise DataError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})", str(path))
    reader = READERS[fmt]
    _check_options(fmt, reader, options, path)
    key, target = cache_path(path, fmt, name, options)
    if cache and key and target.is_file():
        ds = load_saved(target)
        if ds is not None:
            return ds
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's numeric warnings: errors, not noise
        try:
            ds = reader(path, name=name, **options)
        except (FloatingPointError, RuntimeWarning) as exc:
            raise DataError(f"numeric error while reading ({exc})", str(path)) from None
    ds.source_hash = key
    if cache and key:
        try:
            save_dataset(ds, target)
        except OSError:
            pass  # a read-only data folder only costs speed
    return ds


def _log(ds: Dataset, log_warnings: bool, known: str | None = None) -> Dataset:
    """Log the dataset's warnings: one WARNING line each, or, when they are `known` already (a
    registered dataset read with its registered options; an imported one, whose import showed them),
    one INFO line for all of them saying so."""
    if log_warnings and known and ds.warnings:
        log.info("%s (%s): %s", ds.name, known, "; ".join(ds.warnings))
    elif log_warnings:
        for w in ds.warnings:
            log.warning("%s: %s", ds.name, w)
    return ds


@os_errors
def load_dataset(name_or_path: str | Path = DEFAULT_DATASET, format: str | None = None, *,  # noqa: A002
                 cache: bool = True, log_warnings: bool = True, **options) -> Dataset:
    """Load a dataset by name (imported, or registered and fetched on demand) or by path.

    See the module docstring.  Preprocessed arrays are cached (``cache=False`` reads the files
    every time).
    """
    s = str(name_or_path)
    p = Path(s).expanduser()
    if is_name(s) and is_imported(s):
        if options:
            raise DataError(f"{s} is an imported dataset, read already: options ({', '.join(sorted(options))}) "
                            f"apply when reading files (import it again with them)", str(dataset_dir(s)))
        ds = load_saved(dataset_dir(s) / IMPORTED_FILE)
        if ds is None:
            raise DataError("unreadable imported dataset; import it again", str(dataset_dir(s) / IMPORTED_FILE))
        return _log(ds, log_warnings, known="imported data; `jnskr data import` showed these")
    if s in REGISTRY and not os.path.lexists(p):
        info = REGISTRY[s]
        if not is_fetched(s):
            if s != "ml-100k":
                raise JnskrError(
                    f"dataset {s} is not in {dataset_dir(s)}; fetch it with `jnskr data fetch {s}` "
                    f"(needs internet) or run `jnskr data import /path/to/{s} --format kgat --name {s}`"
                )
            fetch(s)
        ds = read_cached(dataset_dir(s), format or info.format, cache=cache, name=s, **{**info.options, **options})
        as_registered = format in (None, info.format) and all(info.options.get(k) == v for k, v in options.items())
        return _log(ds, log_warnings, known="registered data, as prepared" if as_registered else None)
    if not os.path.lexists(p):
        known = ", ".join(sorted(set(REGISTRY) | set(imported_names())))
        shown = s if len(s) <= 80 else s[:77] + "..."
        raise JnskrError(f"no dataset {shown!r}: not a path, and not a registered or imported name ({known})")
    return _log(read_cached(p, format, cache=cache, **options), log_warnings)


def load_configured(data, *, cache: bool = True, log_warnings: bool = True) -> Dataset:
    """The dataset a `jnskr.data.config.DataConfig` (``cfg.data``) names, read with its reader
    options: ``data.path`` (with ``data.format``) when set, else ``data.dataset``."""
    target = data.path if data.path else data.dataset
    return load_dataset(target, data.format, cache=cache, log_warnings=log_warnings, **data.reader_options())


@os_errors
def import_dataset(path: str | Path, format: str | None = None, name: str | None = None,  # noqa: A002
                   **options) -> Dataset:
    """Read and validate ``path``, then store its arrays as ``<data>/<name>/dataset.npz`` (with
    ``meta.json``).  Both are written into a temp folder beside the destination, which then
    replaces it: an error leaves nothing behind."""
    path = Path(path).expanduser()
    name = check_name(name or path.resolve().name.removesuffix(path.suffix))
    fmt = format or detect_format(path, options)
    ds = read_cached(path, fmt, name=name, **options)
    ds.name = name
    dest = dataset_dir(name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-import-{name[:40]}-", dir=dest.parent))
    try:
        save_dataset(ds, tmp / IMPORTED_FILE)
        meta = {"format": fmt, "source": str(path.resolve()), "options": options,
                "imported": time.strftime("%Y-%m-%dT%H:%M:%S"), "source_hash": ds.source_hash,
                "provenance": ds.provenance}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        old = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{name[:40]}-", dir=dest.parent))
            os.replace(dest, old / "x")
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ds


def list_datasets() -> list[dict]:
    """Registered and imported datasets with their status (imported / cached / fetched / not fetched)."""
    rows = []
    for name, info in REGISTRY.items():
        if is_imported(name):
            status = "imported"
        elif is_fetched(name):
            cached = cache_path(dataset_dir(name), info.format, name, dict(info.options))[1].is_file()
            status = "fetched, cached" if cached else "fetched"
        else:
            status = "not fetched"
        rows.append({"name": name, "kind": "registered", "format": info.format, "status": status,
                     "description": info.description})
    for name in imported_names():
        if name in REGISTRY:
            continue
        meta_path = dataset_dir(name) / "meta.json"
        try:
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        except (OSError, ValueError):
            meta = {}
        rows.append({"name": name, "kind": "imported", "format": meta.get("format", "?"), "status": "imported",
                     "description": meta.get("source", "")})
    return rows
