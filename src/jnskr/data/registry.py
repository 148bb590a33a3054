"""Named datasets: the data folder, fetching, importing and `load_dataset`.

Data folder: ``$JNSKR_DATA``, else ``$XDG_CACHE_HOME/jnskr``, else ``~/.cache/jnskr``.  Layout::

    <data>/<name>/             raw files of a fetched dataset (ml-100k: the 4 RecBole files)
    <data>/<name>/dataset.npz  the preprocessed arrays of an *imported* dataset (+ meta.json)
    <data>/cache/<key>.npz     preprocessed arrays of anything read from files, keyed by
                               `jnskr.data.cache.source_key`

Registered datasets:

* ``ml-100k`` (the default): MovieLens-100K with KB4Rec Freebase links, the four atomic files
  inside the ``recbole`` 1.2.1 wheel on PyPI (fetched with ``pip download``, or the PyPI JSON
  API when pip is absent; sha256-checked; only the 4 files are kept, recbole is not installed).
  Built like ``ml100k-kgat``: `read_recbole` with ``link_only=True``, ``test_ratio=0.2``,
  ``seed=2020``; this reproduces that folder's split and ids exactly.
* ``amazon-book``, ``yelp2018``, ``last-fm``: the KGAT repository's files, each checked
  against its git blob id.  Without network access, `jnskr data import PATH --format kgat
  --name NAME` is the way in.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from jnskr.data.cache import load_saved, save_dataset, source_files, source_key
from jnskr.data.dataset import Dataset
from jnskr.data.readers import FORMATS, READERS, detect_format
from jnskr.errors import DataError, JnskrError

DEFAULT_DATASET = "ml-100k"
KGAT_BASE_URL = "https://raw.githubusercontent.com/xiangwang1223/knowledge_graph_attention_network/master/Data"
RECBOLE_VERSION = "1.2.1"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_JSON_URL = f"https://pypi.org/pypi/recbole/{RECBOLE_VERSION}/json"
ML100K_MEMBERS = tuple(f"recbole/dataset_example/ml-100k/ml-100k.{ext}" for ext in ("inter", "kg", "link", "item"))
IMPORTED_FILE = "dataset.npz"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

CITE_KGAT = "Wang, He, Cao, Liu, Chua. KGAT: Knowledge Graph Attention Network for Recommendation. KDD 2019."
CITE_JNSKR = ("Chen, Zhang, Ma, Liu, Ma. Jointly Non-Sampling Learning for Knowledge Graph Enhanced "
              "Recommendation. SIGIR 2020.")
KGAT_LICENCE = ("KGAT data terms: research use only; no redistribution without permission; no "
                "de-anonymisation; no commercial use; publications must cite KGAT.")


@dataclass(frozen=True)
class RemoteFile:
    """A file of a KGAT dataset: its name upstream, its git blob id, and (for a ``.zip``) the
    blob id of the unzipped content, stored under the name without ``.zip``."""

    name: str
    blob: str | None
    content_blob: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset."""

    name: str
    description: str
    format: str
    licence: str
    cite: tuple[str, ...]
    options: dict = field(default_factory=dict)
    files: tuple[RemoteFile, ...] = ()


def _kgat_files(blobs: dict[str, str], kg_zip: str | None, kg_content: str) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(n, b) for n, b in blobs.items()) + (RemoteFile("kg_final.txt.zip", kg_zip, kg_content),)


REGISTRY: dict[str, DatasetInfo] = {
    "ml-100k": DatasetInfo(
        name="ml-100k",
        description="MovieLens-100K + Freebase KG (KB4Rec), from the recbole 1.2.1 wheel; 80/20 split, seed 2020",
        format="recbole",
        licence=("MovieLens data (GroupLens): research use; no redistribution or commercial use without "
                 "permission; cite the paper below. KB4Rec links: cite Zhao et al."),
        cite=("Harper, Konstan. The MovieLens Datasets: History and Context. ACM TiiS 5(4), 2015.",
              "Zhao, He, Zhou, Wen, Wen. KB4Rec: A Data Set for Linking Knowledge Bases with Recommender "
              "Systems. Data Intelligence 1(2), 2019.", CITE_JNSKR),
        options={"link_only": True, "test_ratio": 0.2, "seed": 2020},
    ),
    "amazon-book": DatasetInfo(
        name="amazon-book", description="KGAT Amazon-book (70,679 users, 24,915 items, Freebase KG)",
        format="kgat", licence=KGAT_LICENCE, cite=(CITE_KGAT, CITE_JNSKR),
        files=_kgat_files({
            "train.txt": "af17875a232fbcf27f08270c77fecefe9e4d9806",
            "test.txt": "2b34f222772f224522740242b09ae2e48b395410",
            "user_list.txt": "bb0265ce731297ae1365289ba7b830f7fdf82ad7",
            "item_list.txt": "7412433501b2042834d5865ee6237226c177db73",
            "entity_list.txt": "513aa5052bf508fd9c574543aeaa2b732968c369",
            "relation_list.txt": "16b6f830f9559e8ada0e70406d788984b714be75",
        }, "7eedb0ed50a9bae8a89ef2193b3a9fb1bf9ed03e", "639bb904a733493616ea4797becdc43b4f9be7ae"),
    ),
    "yelp2018": DatasetInfo(
        name="yelp2018", description="KGAT Yelp2018 (45,919 users, 45,538 items, business KG)",
        format="kgat", licence=KGAT_LICENCE + " Yelp data: Yelp dataset terms.", cite=(CITE_KGAT, CITE_JNSKR),
        files=_kgat_files({
            "train.txt": "c834b6e61cbb6a716b039367f3ddd711ca3a2483",
            "test.txt": "c6564bd93b5ecf6836b4fc5cf5508fc367b91b76",
            "user_list.txt": "d3cb84833029c50fbddc46532e929d072fb6186c",
            "item_list.txt": "fc2806ceaf189a723e4bcf4726a92e8a649795b2",
            "entity_list.txt": "b3237ce3ab70cc3af787f735b75ba917cda92255",
            "relation_list.txt": "af62d15d01cec5fecdaf41f99a7e4ef4e944b613",
        }, "9a11bad2806d43f613787f000d8d826f3bc91767", "8f8d4bbf1a9ddd7eb60f42df916369324c90d9ea"),
    ),
    "last-fm": DatasetInfo(
        name="last-fm", description="KGAT Last-FM (23,566 users, 48,123 items, Freebase KG)",
        format="kgat", licence=KGAT_LICENCE, cite=(CITE_KGAT, CITE_JNSKR),
        files=_kgat_files({
            "train.txt": "905779bf273225caa33049cef2b6cf9b923bd139",
            "test.txt": "ae3e3402405895b0866be03746d547bd701f6888",
            "user_list.txt": "7e4583089c56756bc65d5a79d912a680588b9443",
            "item_list.txt": "50f9cb0333dcf15e9679a5d25273548dda4a0bf9",
            "entity_list.txt": "ddeb0fe99fb386a82a97cba46e4ff66efb124be2",
            "relation_list.txt": "0a1cec98c3b200ac6afd5c6ecb5ba0413d632ecb",
        }, None, "42d2726e067d743bf73891a7ff8caddb5c1adf84"),
    ),
}


# ----------------------------------------------------------------------------- locations


def data_dir() -> Path:
    """``$JNSKR_DATA``, else ``$XDG_CACHE_HOME/jnskr``, else ``~/.cache/jnskr``."""
    if os.environ.get("JNSKR_DATA"):
        return Path(os.environ["JNSKR_DATA"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "jnskr"
    return Path.home() / ".cache" / "jnskr"


def dataset_dir(name: str) -> Path:
    """``<data>/<name>``: where a named dataset's files live."""
    return data_dir() / name


def is_imported(name: str) -> bool:
    return (dataset_dir(name) / IMPORTED_FILE).is_file()


def is_fetched(name: str) -> bool:
    """Whether a registered dataset's raw files are in the data folder."""
    info = REGISTRY[name]
    d = dataset_dir(name)
    if info.name == "ml-100k":
        return all((d / Path(m).name).is_file() for m in ML100K_MEMBERS)
    return all((d / f.name.removesuffix(".zip")).is_file() for f in info.files)


def git_blob_id(data: bytes) -> str:
    """The git blob id of ``data`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# ----------------------------------------------------------------------------- fetching


def _fresh_tmp(parent: Path, name: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=parent))


def _install(tmp: Path, dest: Path, names: list[str]) -> None:
    """Move verified files from ``tmp`` into ``dest`` (each move atomic)."""
    dest.mkdir(parents=True, exist_ok=True)
    for n in names:
        os.replace(tmp / n, dest / n)


def extract_wheel(wheel: Path, dest: Path, sha256: str = RECBOLE_WHEEL_SHA256,
                  members: tuple[str, ...] = ML100K_MEMBERS) -> list[Path]:
    """Check ``wheel``'s sha256, then extract only ``members`` (flattened) into ``dest``.

    Nothing is written to ``dest`` unless the checksum matches and every member is present.
    """
    digest = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
    if digest != sha256:
        raise JnskrError(f"{wheel}: sha256 {digest} does not match the expected {sha256}; nothing was extracted")
    tmp = _fresh_tmp(Path(dest).parent, Path(dest).name)
    try:
        try:
            with zipfile.ZipFile(wheel) as zf:
                have = set(zf.namelist())
                missing = [m for m in members if m not in have]
                if missing:
                    raise JnskrError(f"{wheel}: missing {', '.join(missing)}")
                for m in members:
                    (tmp / Path(m).name).write_bytes(zf.read(m))
        except zipfile.BadZipFile as exc:
            raise JnskrError(f"{wheel}: not a wheel ({exc})") from None
        names = [Path(m).name for m in members]
        _install(tmp, Path(dest), names)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [Path(dest) / n for n in names]


def _download_wheel_pip(tmp: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           f"recbole=={RECBOLE_VERSION}", "-d", str(tmp)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wheels = sorted(tmp.glob("recbole-*.whl"))
    if res.returncode != 0 or not wheels:
        last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise JnskrError(f"pip download recbole=={RECBOLE_VERSION} failed: {last[0]}")
    return wheels[0]


def _download_wheel_https(tmp: Path, json_url: str = RECBOLE_JSON_URL) -> Path:
    try:
        with urllib.request.urlopen(json_url, timeout=60) as r:
            meta = json.load(r)
        url = next(u["url"] for u in meta["urls"] if u["filename"].endswith(".whl"))
        out = tmp / url.rsplit("/", 1)[-1]
        with urllib.request.urlopen(url, timeout=300) as r, open(out, "wb") as fh:
            shutil.copyfileobj(r, fh)
    except (OSError, urllib.error.URLError, KeyError, StopIteration, ValueError) as exc:
        raise JnskrError(f"download of the recbole {RECBOLE_VERSION} wheel failed: {exc}") from None
    return out


def fetch_ml100k(dest: Path | None = None) -> Path:
    """Fetch the recbole wheel, check its sha256, keep only the 4 ml-100k files in ``dest``."""
    import importlib.util

    dest = Path(dest) if dest is not None else dataset_dir("ml-100k")
    tmp = _fresh_tmp(dest.parent, "recbole-wheel")
    try:
        errors = []
        wheel = None
        if importlib.util.find_spec("pip") is not None:
            try:
                wheel = _download_wheel_pip(tmp)
            except (JnskrError, OSError, subprocess.SubprocessError) as exc:
                errors.append(str(exc))
        if wheel is None:
            try:
                wheel = _download_wheel_https(tmp)
            except JnskrError as exc:
                errors.append(str(exc))
        if wheel is None:
            raise JnskrError(f"cannot fetch ml-100k: {'; '.join(errors)}")
        extract_wheel(wheel, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def download_kgat(name: str, dest: Path | None = None, *, base_url: str | None = None,
                  files: tuple[RemoteFile, ...] | None = None) -> Path:
    """Download a KGAT dataset's files from ``<base_url>/<name>/<file>``, verify every git blob
    id, unzip ``kg_final.txt.zip``, then move the files into ``dest`` (default ``<data>/<name>``).

    A download failure or a blob mismatch raises `JnskrError` and leaves ``dest`` untouched.
    """
    files = REGISTRY[name].files if files is None else files
    base_url = KGAT_BASE_URL if base_url is None else base_url
    dest = Path(dest) if dest is not None else dataset_dir(name)
    tmp = _fresh_tmp(dest.parent, name)
    names = []
    try:
        for f in files:
            url = f"{base_url.rstrip('/')}/{name}/{f.name}"
            try:
                with urllib.request.urlopen(url, timeout=300) as r:
                    data = r.read()
            except (OSError, urllib.error.URLError, ValueError) as exc:
                missing = ", ".join(x.name for x in files)
                raise JnskrError(
                    f"cannot download {name} ({url}: {getattr(exc, 'reason', exc)}); missing {missing}; "
                    f"if you have the files, run `jnskr data import /path/to/{name} --format kgat --name {name}`"
                ) from None
            if f.blob is not None and git_blob_id(data) != f.blob:
                raise JnskrError(f"{url}: git blob {git_blob_id(data)} does not match the expected {f.blob}; nothing was saved")
            out_name = f.name
            if f.name.endswith(".zip"):
                try:
                    with zipfile.ZipFile(io.BytesIO(data)) as zf:
                        member = next(m for m in zf.namelist() if not m.endswith("/") and "__MACOSX" not in m)
                        data = zf.read(member)
                except (zipfile.BadZipFile, StopIteration):
                    raise JnskrError(f"{url}: not a zip archive holding one file; nothing was saved") from None
                out_name = f.name.removesuffix(".zip")
            if f.content_blob is not None and git_blob_id(data) != f.content_blob:
                raise JnskrError(f"{url}: content git blob {git_blob_id(data)} does not match the expected "
                                 f"{f.content_blob}; nothing was saved")
            (tmp / out_name).write_bytes(data)
            names.append(out_name)
        _install(tmp, dest, names)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def fetch(name: str, *, base_url: str | None = None, force: bool = False) -> Path:
    """Make a registered dataset's raw files present in ``<data>/<name>``; return that folder."""
    if name not in REGISTRY:
        raise JnskrError(f"unknown dataset {name!r}: registered are {', '.join(REGISTRY)}")
    if is_fetched(name) and not force:
        return dataset_dir(name)
    if name == "ml-100k":
        return fetch_ml100k(dataset_dir(name))
    return download_kgat(name, dataset_dir(name), base_url=base_url)


# ----------------------------------------------------------------------------- loading


def cache_path(path: Path, fmt: str, name: str | None, options: dict) -> tuple[str, Path]:
    """(key, ``<data>/cache/<key>.npz``) for reading ``path``; key ``""`` when it has no files."""
    files = source_files(path, fmt) if Path(path).exists() else []
    key = source_key(files, fmt, {**options, "name": name}) if files else ""
    return key, data_dir() / "cache" / f"{key}.npz"


def read_cached(path: Path, format: str | None = None, *, cache: bool = True, name: str | None = None,  # noqa: A002
                **options) -> Dataset:
    """Read ``path`` with a reader, through the ``<data>/cache`` npz cache."""
    path = Path(path)
    fmt = format or detect_format(path)
    if fmt not in READERS:
        raise DataError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})", str(path))
    key, target = cache_path(path, fmt, name, options)
    if cache and key and target.is_file():
        ds = load_saved(target)
        if ds is not None:
            return ds
    reader = READERS[fmt]
    try:
        ds = reader(path, name=name, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise DataError(f"option not supported by the {fmt} reader ({exc})", str(path)) from None
        raise
    ds.source_hash = key
    if cache and key:
        try:
            save_dataset(ds, target)
        except OSError:
            pass  # a read-only data folder only costs speed
    return ds


def load_dataset(name_or_path: str | Path = DEFAULT_DATASET, format: str | None = None, *,  # noqa: A002
                 cache: bool = True, **options) -> Dataset:
    """Load a dataset by name (imported, or registered and fetched on demand) or by path.

    A name is looked up first among imported datasets (``<data>/<name>/dataset.npz``), then
    in `REGISTRY` (fetching ``ml-100k`` automatically; the KGAT sets fail offline with a
    one-line hint to ``jnskr data import``).  Anything else is a path read with the given or
    detected ``format`` (``kgat``, ``recbole``, ``tsv``); ``options`` go to the reader.
    Preprocessed arrays are cached (``cache=False`` reads the files every time).
    """
    s = str(name_or_path)
    p = Path(s).expanduser()
    if _NAME.match(s) and is_imported(s):
        ds = load_saved(dataset_dir(s) / IMPORTED_FILE)
        if ds is None:
            raise DataError("unreadable imported dataset; import it again", str(dataset_dir(s) / IMPORTED_FILE))
        return ds
    if s in REGISTRY and not p.exists():
        info = REGISTRY[s]
        if not is_fetched(s):
            if s != "ml-100k":
                raise JnskrError(
                    f"dataset {s} is not in {dataset_dir(s)}; fetch it with `jnskr data fetch {s}` "
                    f"(needs internet) or run `jnskr data import /path/to/{s} --format kgat --name {s}`"
                )
            fetch(s)
        return read_cached(dataset_dir(s), format or info.format, cache=cache, name=s, **{**info.options, **options})
    if not p.exists():
        known = ", ".join(sorted(set(REGISTRY) | set(imported_names())))
        raise JnskrError(f"no dataset {s!r}: not a path, and not a registered or imported name ({known})")
    return read_cached(p, format, cache=cache, **options)


def imported_names() -> list[str]:
    """Names of the datasets imported into the data folder."""
    d = data_dir()
    if not d.is_dir():
        return []
    return sorted(c.name for c in d.iterdir() if c.is_dir() and (c / IMPORTED_FILE).is_file())


def import_dataset(path: str | Path, format: str | None = None, name: str | None = None,  # noqa: A002
                   **options) -> Dataset:
    """Read and validate ``path``, then store its arrays as ``<data>/<name>/dataset.npz``."""
    path = Path(path).expanduser()
    name = name or path.resolve().name.removesuffix(path.suffix)
    if not _NAME.match(name):
        raise JnskrError(f"invalid dataset name {name!r}: use letters, digits, '.', '_' and '-'")
    fmt = format or detect_format(path)
    ds = read_cached(path, fmt, name=name, **options)
    ds.name = name
    dest = dataset_dir(name)
    save_dataset(ds, dest / IMPORTED_FILE)
    meta = {"format": fmt, "source": str(path.resolve()), "options": options,
            "imported": time.strftime("%Y-%m-%dT%H:%M:%S"), "source_hash": ds.source_hash}
    tmp = dest / ".meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1, default=str))
    os.replace(tmp, dest / "meta.json")
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
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        rows.append({"name": name, "kind": "imported", "format": meta.get("format", "?"), "status": "imported",
                     "description": meta.get("source", "")})
    return rows
