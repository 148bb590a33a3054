"""The KG completion benchmarks: registry, fetching, the cache and `load_triples`.

Cache: ``<data>/kg/<name>/{train,valid,test}.txt`` with ``<data>`` = `jnskr.data.registry.data_dir`
(``$JNSKR_DATA``, else ``~/.cache/jnskr``).  Sources, both verified before anything is written:

* ``conve`` (all five): the archive ``<base_url>/<archive>`` of the public ConvE repository
  (default base ``https://raw.githubusercontent.com/TimDettmers/ConvE/master``), checked by its
  git blob id (sha1 of ``blob <size>\\0<bytes>``), then each extracted file by its sha256.
  ``base_url`` may be any URL urllib reads, e.g. ``file:///work/shared/data/kg``.
* ``pykeen`` (nations, kinship, umls): the same files inside the ``pykeen`` wheel from the
  package index (``pip download --no-deps``), checked by the wheel's sha256 and each file's.

The fetching is `jnskr.data.download`'s (`download_bytes`, `pip_download_wheel`), the git blob id
`jnskr.data.catalogue`'s, the writes `jnskr.runs`'s.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from jnskr.data.catalogue import git_blob_id
from jnskr.errors import JnskrError
from jnskr.kg.data import SPLITS, KGData, read_triples_dir

__all__ = ["KGDatasetInfo", "REGISTRY", "CONVE_BASE_URL", "resolve", "dataset_dir", "is_fetched", "fetch",
           "load_triples", "list_datasets", "git_blob_id", "extract_archive", "extract_wheel"]

CONVE_BASE_URL = "https://raw.githubusercontent.com/TimDettmers/ConvE/master"
PYKEEN_VERSION = "1.11.1"
PYKEEN_WHEEL_SHA256 = "b6cc0ab012fc6ba4f37b58fb7081a409a5c1f04cbbb0e0e9c2256e911757d4ba"
CITE_KOK = "Kok, Domingos. Statistical Predicate Invention. ICML 2007."
CITE_CONVE = "Dettmers, Minervini, Stenetorp, Riedel. Convolutional 2D Knowledge Graph Embeddings. AAAI 2018."
CONVE_TERMS = "Files as shipped by the ConvE repository (MIT-licensed code, Copyright 2017 Tim Dettmers)."


@dataclass(frozen=True)
class KGDatasetInfo:
    """A registered benchmark: where its archive is, how to verify it, what to cite."""

    name: str
    archive: str
    blob: str
    sha256: str
    files: tuple[tuple[str, str], ...]  # (split, sha256 of its text)
    description: str
    licence: str
    cite: tuple[str, ...]
    pykeen_dir: str | None = None
    aliases: tuple[str, ...] = ()

    def file_sha256(self, split: str) -> str:
        return dict(self.files)[split]


def _files(train: str, valid: str, test: str) -> tuple[tuple[str, str], ...]:
    return (("train", train), ("valid", valid), ("test", test))


REGISTRY: dict[str, KGDatasetInfo] = {
    "fb15k-237": KGDatasetInfo(
        "fb15k-237", "FB15k-237.tar.gz", "d87987f1028474a0aacd7739d88ef2c2a3a9a7b9",
        "311df7930f842a02979eaa7a802484a6afe62303c07f915f1e6edbc30cbe05e8",
        _files("6e4c2782169af21e9743f3b1d200886f5d595bf6bc504ec1351720949c5cdfae",
               "cf6309010852f6a8d47a45df830a426415d1ee6f7a3970a8376ff1fb81db4a5c",
               "5711cf41623ceb4eacc50eb6108a3ca6565c7492e3caaf82a3e355cc660d1574"),
        "FB15k-237 (14,541 entities, 237 relations, 272,115 / 17,535 / 20,466 triples)",
        CONVE_TERMS + " Derived from Freebase (CC BY 2.5).",
        ("Toutanova, Chen. Observed versus latent features for knowledge base and text inference. CVSC 2015.",
         "Bordes, Usunier, Garcia-Duran, Weston, Yakhnenko. Translating Embeddings for Modeling "
         "Multi-relational Data. NIPS 2013.")),
    "wn18rr": KGDatasetInfo(
        "wn18rr", "WN18RR.tar.gz", "37f00f2a3e179a9a4862523169bffc7d7d70f7d0",
        "1eb9152f804c140d163462c0d49f65e5a0b30ab5fbb375c5e3353c11a6249060",
        _files("038612e783c215ee5f3ca9fbfca27b8d0739be1028fe4ee7c174aecf0b83d5df",
               "453ce7202afa58094a04d2b1560ee2b02660f1c260b32ce6651c8ccedd1028ab",
               "0383bceaaa1096cf3c03ec021ed0048068e2355dbfc0239b292cefdac821cec5"),
        "WN18RR (40,943 entities, 11 relations, 86,835 / 3,034 / 3,134 triples)",
        CONVE_TERMS + " Derived from WordNet (WordNet licence).",
        (CITE_CONVE, "Miller. WordNet: A Lexical Database for English. CACM 38(11), 1995.")),
    "nations": KGDatasetInfo(
        "nations", "nations.tar.gz", "2400fd01b10a3c633f16bd6999dcc508beb058e4",
        "feb3e3e027103089934ea7dfb67d2048d8a43e65d6757a86f2e037acb66f640b",
        _files("0830fa9da8e5bba2ccdaa45b7bdc9130451ba66b09ff2708f35fccaf82473e57",
               "2b337a62e51a2f45c283eac98a70d21b7e0e102136be1539b2a52c652a7b0530",
               "3971085165b47b6aeaec68058c6d8d98b3005e929db81268410b95ae4db770ab"),
        "Nations (14 entities, 55 relations, 1,592 / 199 / 201 triples)", CONVE_TERMS,
        (CITE_KOK, "Rummel. Dimensionality of Nations project. 1950-1965."), pykeen_dir="nations"),
    "kinship": KGDatasetInfo(
        "kinship", "kinship.tar.gz", "b39b7c999e8d426747b2acd3c6a1f9249e60b228",
        "a3cb9ca67213eb38133aebc12901195e283d844ebd59f1a6cbf2d4fa12ced4e6",
        _files("738612111a6acf0e39662bde24c7e72a4d1edf20931beea077da367dda689731",
               "c56f8630a583178b1e569f11a64aa535ae1ce0b0912d8b1e24716be2b37f04da",
               "05e5733265761d55be9c05bfaff5a8d0808df46f9c1e9d66cc3f2fe114e43d88"),
        "Kinship / PyKEEN Kinships (104 entities, 25 relations, 8,544 / 1,068 / 1,074 triples)", CONVE_TERMS,
        (CITE_KOK, "Denham. The detection of patterns in Alyawarra nonverbal behavior. PhD thesis, 1973."),
        pykeen_dir="kinships", aliases=("kinships",)),
    "umls": KGDatasetInfo(
        "umls", "umls.tar.gz", "b852b2c316e213c77dc7e35ab6d9f1faa236488d",
        "26223aa91f0ec8db2324e0f489b9a4425e04d1d0df72ce5cfd62af4b91aee6fd",
        _files("873ef4925516b83e7f6f8cc02b4be51d848828710a7f65a956f0ac4a9e452f35",
               "025c98f8a4891e2a6582ec5b40ee0d904031edad9c52554522f4b7904820c98e",
               "a7eb529a3d2810fcc96341ccc97c625a5e202f8389673aa6bd317eeebbb79014"),
        "UMLS (135 entities, 46 relations, 5,216 / 652 / 661 triples)", CONVE_TERMS,
        (CITE_KOK, "McCray. An upper-level ontology for the biomedical domain. Comp. Funct. Genomics 4, 2003."),
        pykeen_dir="umls"),
}


def resolve(name: str) -> KGDatasetInfo | None:
    """The registered dataset called `name` (case-insensitive; aliases such as ``kinships``)."""
    key = str(name).strip().lower()
    for info in REGISTRY.values():
        if key == info.name or key in info.aliases:
            return info
    return None


def _info(name: str) -> KGDatasetInfo:
    info = resolve(name)
    if info is None:
        raise JnskrError(f"unknown KG dataset {name!r}: registered are {', '.join(REGISTRY)}")
    return info


def dataset_dir(name: str) -> Path:
    """``<data>/kg/<name>`` (``<data>``: `jnskr.data.registry.data_dir`)."""
    from jnskr.data.registry import data_dir  # imported here: `import jnskr.kg` stays light

    return data_dir() / "kg" / _info(name).name


def is_fetched(name: str) -> bool:
    d = dataset_dir(name)
    return all((d / f"{s}.txt").is_file() for s in SPLITS)


def _verify_files(info: KGDatasetInfo, texts: dict[str, bytes], where: str) -> None:
    for split, data in texts.items():
        got = hashlib.sha256(data).hexdigest()
        if got != info.file_sha256(split):
            raise JnskrError(f"{where}: {split}.txt has sha256 {got}, expected {info.file_sha256(split)}; "
                             "nothing was saved")


def _install(texts: dict[str, bytes], dest: Path) -> Path:
    """Write the verified files into `dest` (each by `jnskr.runs.atomic_write_bytes`: a temporary
    file and a rename)."""
    from jnskr.runs import atomic_write_bytes

    dest.mkdir(parents=True, exist_ok=True)
    for split, data in texts.items():
        atomic_write_bytes(dest / f"{split}.txt", data)
    return dest


def extract_archive(info: KGDatasetInfo, data: bytes, where: str) -> dict[str, bytes]:
    """{split: bytes} from a verified ``.tar.gz`` (members matched by file name, read, not extracted)."""
    if git_blob_id(data) != info.blob:
        raise JnskrError(f"{where}: git blob {git_blob_id(data)} does not match the expected {info.blob}; "
                         "nothing was saved")
    out = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
            members = [m for m in tf.getmembers() if m.isfile()]
            for split in SPLITS:
                found = [m for m in members if Path(m.name).name == f"{split}.txt"]
                if len(found) != 1:
                    raise JnskrError(f"{where}: expected one {split}.txt in the archive, found {len(found)}")
                out[split] = tf.extractfile(found[0]).read()
    except tarfile.TarError as exc:
        raise JnskrError(f"{where}: not a tar archive ({exc})") from None
    _verify_files(info, out, where)
    return out


def extract_wheel(info: KGDatasetInfo, wheel: Path, sha256: str = PYKEEN_WHEEL_SHA256) -> dict[str, bytes]:
    """{split: bytes} of ``pykeen/datasets/<dir>/<split>.txt`` from a sha256-verified wheel."""
    data = Path(wheel).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise JnskrError(f"{wheel}: sha256 {hashlib.sha256(data).hexdigest()} does not match the expected "
                         f"{sha256}; nothing was extracted")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            out = {s: zf.read(f"pykeen/datasets/{info.pykeen_dir}/{s}.txt") for s in SPLITS}
    except (zipfile.BadZipFile, KeyError) as exc:
        raise JnskrError(f"{wheel}: not the expected pykeen wheel ({exc})") from None
    _verify_files(info, out, str(wheel))
    return out


def _download(url: str) -> bytes:
    from jnskr.data.download import download_bytes  # imported here: `import jnskr.kg` stays light

    return download_bytes(url, "with a local copy of the archive use base_url='file:///path/to/folder'")


def _pykeen_wheel(tmp: Path) -> Path:
    from jnskr.data.download import pip_download_wheel

    return pip_download_wheel(f"pykeen=={PYKEEN_VERSION}", tmp)


def fetch(name: str, base_url: str | None = None, force: bool = False, *, source: str = "conve",
          wheel: str | Path | None = None) -> Path:
    """Make ``<data>/kg/<name>/{train,valid,test}.txt`` present and verified; return the folder.

    `source` ``conve`` downloads ``<base_url>/<archive>`` (default `CONVE_BASE_URL`);
    ``pykeen`` takes the files from the pykeen wheel (`wheel`, or ``pip download``).  An
    already fetched dataset is returned as is unless `force`.  Nothing is written unless every
    check passes.
    """
    info = _info(name)
    dest = dataset_dir(info.name)
    if is_fetched(info.name) and not force:
        return dest
    if source == "conve":
        url = f"{(base_url or CONVE_BASE_URL).rstrip('/')}/{info.archive}"
        return _install(extract_archive(info, _download(url), url), dest)
    if source != "pykeen":
        raise JnskrError(f"unknown source {source!r}: conve or pykeen")
    if info.pykeen_dir is None:
        raise JnskrError(f"{info.name} is not in the pykeen wheel; use the conve source")
    if wheel is not None:
        return _install(extract_wheel(info, Path(wheel), PYKEEN_WHEEL_SHA256), dest)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-pykeen-"))
    try:
        return _install(extract_wheel(info, _pykeen_wheel(tmp), PYKEEN_WHEEL_SHA256), dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_triples(name_or_dir: str | Path, *, base_url: str | None = None) -> KGData:
    """A folder with train/valid/test.txt, or a registered name (fetched on first use)."""
    p = Path(str(name_or_dir)).expanduser()
    if p.is_dir():
        return read_triples_dir(p)
    info = resolve(str(name_or_dir))
    if info is None:
        raise JnskrError(f"no KG dataset {str(name_or_dir)!r}: not a folder, and not one of {', '.join(REGISTRY)}")
    fetched = is_fetched(info.name)
    folder = fetch(info.name, base_url=base_url)
    if fetched:  # verified when fetched; a cache cut short or edited since is caught here
        verify_cached(info, folder)
    return read_triples_dir(folder, name=info.name)


def verify_cached(info: KGDatasetInfo, folder: Path) -> None:
    """Check the cached files of `info` against their sha256 (the three files of the largest
    benchmark hash in well under a second); a `JnskrError` naming the damaged file otherwise."""
    for split in SPLITS:
        path = folder / f"{split}.txt"
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise JnskrError(f"{path}: cannot read the cached file ({exc.strerror})") from None
        if digest.hexdigest() != info.file_sha256(split):
            raise JnskrError(f"{path}: the cached {info.name} file is damaged or cut short ({path.stat().st_size:,} "
                             f"bytes, sha256 {digest.hexdigest()[:12]}..., expected {info.file_sha256(split)[:12]}...); "
                             f"delete {folder} and it is fetched again")


def list_datasets() -> list[dict]:
    """Registered KG datasets with their status (fetched / not fetched)."""
    return [{"name": n, "status": "fetched" if is_fetched(n) else "not fetched", "description": i.description}
            for n, i in REGISTRY.items()]
