"""Registry, data folder, cache, fetch/extract/download code paths, import."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from jnskr.data import load_dataset, read_kgat, readers
from jnskr.data import registry as reg
from jnskr.data.cache import load_saved, save_dataset
from jnskr.errors import DataError, JnskrError
from conftest import DATA, shared_dataset

FIX = DATA
SHARED = Path(__file__).parents[2].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "jnskr-data"
    monkeypatch.setenv("JNSKR_DATA", str(d))
    return d


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ----------------------------------------------------------------------------- data folder


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("JNSKR_DATA", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert reg.data_dir() == tmp_path / "a"
    monkeypatch.delenv("JNSKR_DATA")
    assert reg.data_dir() == tmp_path / "x" / "jnskr"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert reg.data_dir() == tmp_path / "home" / ".cache" / "jnskr"


def test_git_blob_id():
    assert reg.git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert reg.git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    train = SHARED / "amazon-book" / "train.txt"
    if train.is_file():  # the registry's blob ids are the upstream ones
        assert reg.git_blob_id(train.read_bytes()) == dict(
            (f.name, f.blob) for f in reg.REGISTRY["amazon-book"].files)["train.txt"]


# ----------------------------------------------------------------------------- cache


class Counting:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *a, **k):
        self.calls += 1
        return self.fn(*a, **k)


def test_second_load_hits_the_cache(tmp_path, monkeypatch, data_home):
    src = tmp_path / "src"
    shutil.copytree(FIX / "kgat_tiny", src)
    before = tree(src)
    counter = Counting(readers.READERS["kgat"])
    monkeypatch.setitem(readers.READERS, "kgat", counter)
    a = load_dataset(src)
    b = load_dataset(src)
    assert counter.calls == 1
    assert a.fingerprint() == b.fingerprint() and a.source_hash == b.source_hash != ""
    assert b.stats == a.stats and b.warnings == a.warnings
    assert b.user_ids.tolist() == a.user_ids.tolist() and b.kg.entity_ids.tolist() == a.kg.entity_ids.tolist()
    assert tree(src) == before  # nothing written into the source folder
    assert len(list((data_home / "cache").glob("*.npz"))) == 1
    assert not list((data_home / "cache").glob(".tmp-*"))
    load_dataset(src, cache=False)
    assert counter.calls == 2
    (src / "test.txt").write_text("0 4\n")  # new bytes -> new key -> re-parse
    c = load_dataset(src)
    assert counter.calls == 3 and c.test.nnz == 1
    load_dataset(src, max_id=1000)  # new options -> new key
    assert counter.calls == 4


def test_corrupt_cache_is_ignored(tmp_path, data_home):
    ds = load_dataset(FIX / "kgat_tiny")
    (f,) = (data_home / "cache").glob("*.npz")
    f.write_bytes(b"garbage")
    again = load_dataset(FIX / "kgat_tiny")
    assert again.fingerprint() == ds.fingerprint()


def test_save_load_roundtrip_without_kg(tmp_path):
    ds = readers.read_tsv(FIX / "tsv_tiny" / "interactions.csv")
    save_dataset(ds, tmp_path / "x.npz")
    back = load_saved(tmp_path / "x.npz")
    assert back.kg is None and back.fingerprint() == ds.fingerprint() and back.item_names is None
    assert back.item_ids.tolist() == ds.item_ids.tolist()


# ----------------------------------------------------------------------------- names, import


def test_unknown_name_is_a_one_line_error():
    with pytest.raises(JnskrError) as e:
        load_dataset("no-such-dataset")
    assert "no dataset 'no-such-dataset'" in str(e.value) and "\n" not in str(e.value)


def test_unfetched_kgat_name_points_to_import(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("must not download on load")

    monkeypatch.setattr(reg, "download_kgat", boom)
    with pytest.raises(JnskrError) as e:
        load_dataset("yelp2018")
    msg = str(e.value)
    assert "jnskr data import /path/to/yelp2018 --format kgat --name yelp2018" in msg and "\n" not in msg


def test_import_then_load_by_name(tmp_path, data_home):
    ds = reg.import_dataset(FIX / "recbole_tiny", "recbole", "tiny")
    assert (data_home / "tiny" / "dataset.npz").is_file() and (data_home / "tiny" / "meta.json").is_file()
    back = load_dataset("tiny")
    assert back.name == "tiny" and back.fingerprint() == ds.fingerprint()
    assert back.item_names.tolist() == ds.item_names.tolist()
    rows = {r["name"]: r for r in reg.list_datasets()}
    assert rows["tiny"]["kind"] == "imported" and rows["tiny"]["format"] == "recbole"
    assert rows["ml-100k"]["status"] == "not fetched"


def test_import_under_a_registered_name_wins(data_home):
    reg.import_dataset(FIX / "kgat_tiny", "kgat", "amazon-book")
    assert load_dataset("amazon-book").n_users == 4
    assert {r["name"]: r["status"] for r in reg.list_datasets()}["amazon-book"] == "imported"


def test_import_bad_name():
    with pytest.raises(JnskrError, match="invalid dataset name"):
        reg.import_dataset(FIX / "kgat_tiny", "kgat", "../evil")


def test_import_error_leaves_nothing(tmp_path, data_home):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.txt").write_text("0 x\n")
    with pytest.raises(DataError):
        reg.import_dataset(bad, "kgat", "bad")
    assert not (data_home / "bad").exists()


# ----------------------------------------------------------------------------- KGAT download


def fake_kgat_tree(base: Path, name: str) -> tuple:
    files = {
        "train.txt": b"0 0 1\n1 1\n",
        "test.txt": b"0 2\n1 0\n",
        "relation_list.txt": b"org_id remap_id\nr 0\n",
    }
    d = base / name
    d.mkdir(parents=True)
    for n, c in files.items():
        (d / n).write_bytes(c)
    kg = b"0 0 3\n2 0 3\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("kg_final.txt", kg)
    (d / "kg_final.txt.zip").write_bytes(buf.getvalue())
    remote = tuple(reg.RemoteFile(n, reg.git_blob_id(c)) for n, c in files.items()) + (
        reg.RemoteFile("kg_final.txt.zip", reg.git_blob_id(buf.getvalue()), reg.git_blob_id(kg)),
    )
    return remote


def test_download_kgat_from_file_url(tmp_path):
    remote = fake_kgat_tree(tmp_path / "mirror", "tinyset")
    dest = tmp_path / "out" / "tinyset"
    reg.download_kgat("tinyset", dest, base_url=(tmp_path / "mirror").as_uri(), files=remote)
    assert sorted(p.name for p in dest.iterdir()) == ["kg_final.txt", "relation_list.txt", "test.txt", "train.txt"]
    ds = read_kgat(dest)
    assert ds.kg.n_triples == 2 and ds.n_users == 2
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".tmp")]


def test_download_kgat_blob_mismatch_leaves_nothing(tmp_path):
    remote = list(fake_kgat_tree(tmp_path / "mirror", "tinyset"))
    remote[1] = reg.RemoteFile("test.txt", "0" * 40)
    out = tmp_path / "out"
    with pytest.raises(JnskrError) as e:
        reg.download_kgat("tinyset", out / "tinyset", base_url=(tmp_path / "mirror").as_uri(), files=tuple(remote))
    assert "does not match the expected 0000" in str(e.value) and "\n" not in str(e.value)
    assert not (out / "tinyset").exists()
    assert list(out.iterdir()) == []
    remote = list(fake_kgat_tree(tmp_path / "mirror2", "tinyset"))
    remote[-1] = reg.RemoteFile("kg_final.txt.zip", remote[-1].blob, "1" * 40)  # content blob wrong
    with pytest.raises(JnskrError, match="content git blob"):
        reg.download_kgat("tinyset", out / "tinyset", base_url=(tmp_path / "mirror2").as_uri(), files=tuple(remote))
    assert list(out.iterdir()) == []


def test_fetch_offline_message(tmp_path, data_home):
    with pytest.raises(JnskrError) as e:
        reg.fetch("last-fm", base_url=(tmp_path / "nowhere").as_uri())
    msg = str(e.value)
    assert msg.startswith("cannot download last-fm") and "missing train.txt" in msg
    assert "`jnskr data import /path/to/last-fm --format kgat --name last-fm`" in msg and "\n" not in msg
    assert not (data_home / "last-fm").exists()


# ----------------------------------------------------------------------------- ml-100k wheel


def fake_wheel(path: Path, members=reg.ML100K_MEMBERS) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for m in members:
            zf.writestr(m, f"content of {m}\n")
        zf.writestr("recbole/__init__.py", "")
        zf.writestr("recbole/dataset_example/ml-100k/ml-100k.user", "u\n")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_extract_wheel_keeps_only_the_four_files(tmp_path):
    whl = tmp_path / "recbole-0-py3-none-any.whl"
    sha = fake_wheel(whl)
    dest = tmp_path / "data" / "ml-100k"
    out = reg.extract_wheel(whl, dest, sha)
    assert sorted(p.name for p in dest.iterdir()) == ["ml-100k.inter", "ml-100k.item", "ml-100k.kg", "ml-100k.link"]
    assert [p.name for p in out] == ["ml-100k.inter", "ml-100k.kg", "ml-100k.link", "ml-100k.item"]
    assert (dest / "ml-100k.kg").read_text() == f"content of {reg.ML100K_MEMBERS[1]}\n"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["ml-100k"]


def test_extract_wheel_checksum_and_members(tmp_path):
    whl = tmp_path / "w.whl"
    fake_wheel(whl)
    dest = tmp_path / "data" / "ml-100k"
    with pytest.raises(JnskrError, match="does not match the expected"):
        reg.extract_wheel(whl, dest, "0" * 64)
    assert not dest.exists()
    whl2 = tmp_path / "w2.whl"
    sha = fake_wheel(whl2, members=reg.ML100K_MEMBERS[:3])
    with pytest.raises(JnskrError, match="missing recbole/dataset_example/ml-100k/ml-100k.item"):
        reg.extract_wheel(whl2, dest, sha)
    assert not dest.exists()


def test_ml100k_uses_the_fetched_files(monkeypatch, data_home):
    """load_dataset('ml-100k') fetches when missing, then reads with link_only and seed 2020."""
    calls = []

    def fake_fetch(dest=None):
        calls.append(dest)
        dest = Path(dest)
        dest.mkdir(parents=True)
        for f in (FIX / "recbole_tiny").iterdir():
            shutil.copy(f, dest / f.name.replace("recbole_tiny", "ml-100k"))
        return dest

    monkeypatch.setattr(reg, "fetch_ml100k", fake_fetch)
    ds = load_dataset("ml-100k")
    assert calls == [data_home / "ml-100k"]
    assert ds.name == "ml-100k" and ds.item_ids.tolist() == ["100", "101", "102", "105"]  # link_only
    assert load_dataset().fingerprint() == ds.fingerprint()  # the default dataset, now cached
    assert calls == [data_home / "ml-100k"]
    assert {r["name"]: r["status"] for r in reg.list_datasets()}["ml-100k"] == "fetched, cached"


@pytest.mark.slow
def test_real_ml100k_fetch_reproduces_ml100k_kgat(data_home):
    """Downloads the recbole wheel with pip (skipped offline) and compares with ../shared/data."""
    probe = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            f"recbole=={reg.RECBOLE_VERSION}", "-d", str(data_home / "probe")],
                           capture_output=True, timeout=600)
    if probe.returncode != 0:
        pytest.skip("pip download of recbole failed (offline?)")
    shutil.rmtree(data_home / "probe")
    t = time.perf_counter()
    ds = load_dataset("ml-100k")
    first = time.perf_counter() - t
    assert (ds.n_users, ds.n_items) == (943, 1598)
    assert ds.train.nnz + ds.test.nnz == 97554
    assert (ds.kg.n_triples, ds.kg.n_entities, ds.kg.n_relations) == (91631, 34628, 24)
    assert ds.item_names[0] == "Toy Story"
    assert sorted(p.name for p in (data_home / "ml-100k").iterdir()) == [
        "ml-100k.inter", "ml-100k.item", "ml-100k.kg", "ml-100k.link"]
    t = time.perf_counter()
    again = load_dataset("ml-100k")
    assert time.perf_counter() - t < first and again.fingerprint() == ds.fingerprint()
    ref_dir = SHARED / "ml100k-kgat"
    if ref_dir.is_dir():  # byte-for-byte the same split, ids, KG as ml100k-kgat
        ref = read_kgat(ref_dir)
        for part in ("train", "test"):
            assert np.array_equal(getattr(ds, part).indptr, getattr(ref, part).indptr)
            assert np.array_equal(getattr(ds, part).indices, getattr(ref, part).indices)
        for k in ("heads", "relations", "tails", "relation_names", "entity_ids"):
            assert np.array_equal(getattr(ds.kg, k), getattr(ref.kg, k)), k
        assert np.array_equal(ds.user_ids, ref.user_ids) and np.array_equal(ds.item_ids, ref.item_ids)


def test_ml100k_kgat_split_rule_reproduced():
    """The ml100k-kgat split is ratio_split's rule: shared random.Random(2020), users in order,
    sorted items shuffled, first round(0.2 n) to test.  Re-derive it from the KGAT files alone."""
    ref_dir = shared_dataset("ml100k-kgat")
    from jnskr.data.split import ratio_split

    ref = read_kgat(ref_dir)
    u = np.concatenate([ref.train.pairs()[0], ref.test.pairs()[0]])
    i = np.concatenate([ref.train.pairs()[1], ref.test.pairs()[1]])
    tr, te = ratio_split(u, i, ref.n_users, ref.n_items, test_ratio=0.2, seed=2020)
    assert np.array_equal(tr.indices, ref.train.indices) and np.array_equal(te.indices, ref.test.indices)
    assert np.array_equal(te.indptr, ref.test.indptr)
    # ml100k-kgat's files are what ratio_split writes (sorted items per line)
    lines = [" ".join(map(str, [x] + te.row(x).tolist())) for x in range(te.n_users)]
    assert (ref_dir / "test.txt").read_text() == "\n".join(lines) + "\n"


def test_fetch_unknown_name():
    with pytest.raises(JnskrError, match="unknown dataset 'nope'"):
        reg.fetch("nope")


def test_cache_write_failure_is_not_fatal(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("JNSKR_DATA", str(blocker / "sub"))  # cannot be created, even as root
    assert load_dataset(FIX / "kgat_tiny").n_users == 4


def test_a_new_file_in_the_folder_renews_the_cached_warnings(tmp_path, data_home):
    src = tmp_path / "src"
    shutil.copytree(FIX / "kgat_tiny", src)
    assert not any("file not read" in w for w in load_dataset(src).warnings)
    (src / "notes.txt").write_text("x\n")
    assert "file not read: notes.txt (not a file of this format; see docs/data.md)" in load_dataset(src).warnings


def test_a_model_registered_after_the_config_module_is_configurable():
    """Config was frozen at import: a model registered later got 'unknown key' for its section."""
    from pydantic import Field

    import jnskr.config  # noqa: F401  (imported first, as in any program)
    from jnskr.config import build_config
    from jnskr.data.config import Strict
    from jnskr.models.base import MODELS, Model, register

    class KNNConfig(Strict):
        neighbours: int = Field(50, ge=1)

    @register
    class ItemKNN(Model):
        name = "itemknn_test"
        section = "itemknn_test"
        Config = KNNConfig

    try:
        cfg = build_config("default", overrides={"model": "itemknn_test", "itemknn_test.neighbours": 7})
        assert cfg.model == "itemknn_test" and cfg.itemknn_test.neighbours == 7
        with pytest.raises(Exception, match="unknown key"):
            build_config("default", overrides={"itemknn_test.nope": 1})
    finally:
        MODELS.unregister("itemknn_test")
    assert "itemknn_test" not in build_config("default").model_dump()


def test_an_imported_datasets_warnings_are_one_info_line_when_loaded(caplog):
    """Issue 21 item 5: `data import` shows a dataset's warnings; every later train and evaluate of
    it printed them again as WARNING lines (four on Last.fm).  Now one INFO line says they are known."""
    import logging

    ds = reg.import_dataset(FIX / "kgat_tiny", "kgat", "tiny")
    assert ds.warnings  # the fixture has some (cold items, items without facts)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="jnskr"):
        reg.load_dataset("tiny")
    records = [r for r in caplog.records if r.name == "jnskr"]
    assert [r.levelname for r in records] == ["INFO"]
    assert "imported data" in records[0].getMessage() and ds.warnings[0] in records[0].getMessage()
