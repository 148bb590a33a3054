"""Downloads of the registered datasets: the recbole wheel for ml-100k (sha256-checked) and the
KGAT repository's files (git-blob-checked); `download_bytes` and `pip_download_wheel` are the
fetching that `jnskr.kg.datasets` shares.  Nothing is written to the destination unless every
check passes: files go to a temp folder beside it first, then are moved in.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from jnskr.data.catalogue import (
    KGAT_BASE_URL,
    ML100K_MEMBERS,
    RECBOLE_JSON_URL,
    RECBOLE_VERSION,
    RECBOLE_WHEEL_SHA256,
    REGISTRY,
    RemoteFile,
    dataset_dir,
    git_blob_id,
)
from jnskr.errors import JnskrError


def download_bytes(url: str, hint: str = "") -> bytes:
    """The bytes at `url` (anything urllib reads: https, file://); a one-line `JnskrError` naming
    the URL, the reason and `hint` (what to do instead) otherwise."""
    try:
        with urllib.request.urlopen(url, timeout=300) as r:
            return r.read()
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise JnskrError(f"cannot download {url} ({getattr(exc, 'reason', exc)})" + (f"; {hint}" if hint else "")) \
            from None


def pip_download_wheel(requirement: str, tmp: Path) -> Path:
    """``pip download --no-deps --only-binary=:all: <requirement>`` into `tmp` -> the wheel (its
    checksum is the caller's to check); a one-line `JnskrError` when pip fails."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", requirement, "-d", str(tmp)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise JnskrError(f"pip download {requirement} failed: {exc}") from None
    wheels = sorted(Path(tmp).glob(f"{requirement.split('==')[0]}-*.whl"))
    if res.returncode != 0 or not wheels:
        last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise JnskrError(f"pip download {requirement} failed: {last[0]}")
    return wheels[0]


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
    return pip_download_wheel(f"recbole=={RECBOLE_VERSION}", tmp)


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
