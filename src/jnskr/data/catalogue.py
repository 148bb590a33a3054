"""The catalogue of named datasets and where they live on disk.

Data folder: ``$JNSKR_DATA``, else ``$XDG_CACHE_HOME/jnskr``, else ``~/.cache/jnskr``.  Layout::

    <data>/<name>/             raw files of a fetched dataset (ml-100k: the 4 RecBole files)
    <data>/<name>/dataset.npz  the preprocessed arrays of an *imported* dataset (+ meta.json)
    <data>/cache/<key>.npz     preprocessed arrays of anything read from files, keyed by
                               `jnskr.data.cache.source_key`

Registered datasets (`REGISTRY`):

* ``ml-100k`` (the default): MovieLens-100K with KB4Rec Freebase links, the four atomic files
  inside the ``recbole`` 1.2.1 wheel on PyPI (fetched with ``pip download``, or the PyPI JSON
  API when pip is absent; sha256-checked; only the 4 files are kept, recbole is not installed).
  Built like ``ml100k-kgat``: `read_recbole` with ``link_only=True``, ``test_ratio=0.2``,
  ``seed=2020``; this reproduces that folder's split and ids exactly.
* ``amazon-book``, ``yelp2018``, ``last-fm``: the KGAT repository's files, each checked
  against its git blob id.  Without network access, `jnskr data import PATH --format kgat
  --name NAME` is the way in.

Downloading: `jnskr.data.download`; loading and importing: `jnskr.data.registry`.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from jnskr.errors import JnskrError

DEFAULT_DATASET = "ml-100k"
KGAT_BASE_URL = "https://raw.githubusercontent.com/xiangwang1223/knowledge_graph_attention_network/master/Data"
RECBOLE_VERSION = "1.2.1"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_JSON_URL = f"https://pypi.org/pypi/recbole/{RECBOLE_VERSION}/json"
ML100K_MEMBERS = tuple(f"recbole/dataset_example/ml-100k/ml-100k.{ext}" for ext in ("inter", "kg", "link", "item"))
IMPORTED_FILE = "dataset.npz"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: the longest dataset name (it becomes a folder name)
MAX_NAME = 100

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




def check_name(name: str) -> str:
    """``name`` when it can name a dataset folder, else a one-line `JnskrError`."""
    if not _NAME.match(name) or len(name) > MAX_NAME:
        shown = name if len(name) <= 40 else name[:37] + "..."
        raise JnskrError(f"invalid dataset name {shown!r}: use at most {MAX_NAME} letters, digits, '.', '_' "
                         f"and '-', starting with a letter or digit")
    return name


def is_name(s: str) -> bool:
    return bool(_NAME.match(s)) and len(s) <= MAX_NAME


def imported_names() -> list[str]:
    """Names of the datasets imported into the data folder."""
    d = data_dir()
    if not d.is_dir():
        return []
    return sorted(c.name for c in d.iterdir() if c.is_dir() and (c / IMPORTED_FILE).is_file())
