"""Delimited data with links, names, configurable files, columns and separators; weights as a
threshold or as confidence (`Interactions.values`); KG linking rules; the three splits;
provenance; the Last.fm originals end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, shared_dataset
from jnskr.data import load_dataset, read_recbole, read_tsv
from jnskr.data.arrays import Interactions
from jnskr.data.cache import load_saved, save_dataset
from jnskr.data.config import DataConfig
from jnskr.data.split import holdout_split, leave_one_out_split, split_pairs, time_split
from jnskr.errors import DataError

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("JNSKR_DATA", str(tmp_path / "jnskr-data"))


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, c in files.items():
        (folder / n).write_bytes(c.encode() if isinstance(c, str) else c)
    return folder


def rows(x: Interactions, ids=None) -> list[list]:
    out = [x.row(u).tolist() for u in range(x.n_users)]
    return [[str(ids[i]) for i in r] for r in out] if ids is not None else out


LASTFM = {  # the shape of the HetRec-2011 originals: header, tabs, CRLF in the KG files
    "user_artists.dat": "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n2\t53\t9\n3\t51\t20\n3\t54\t7\n",
    "item_index2entity_id.txt": "51\t0\r\n52\t1\r\n54\t2\r\n",
    "kg.txt": "0\tmusic.artist.origin\t100\r\n1\tmusic.artist.genre\t101\r\n2\tmusic.artist.origin\t100\r\n",
}
LASTFM_OPTS = dict(files={"interactions": "user_artists.dat", "links": "item_index2entity_id.txt", "kg": "kg.txt"},
                   columns={"user": "userID", "item": "artistID", "weight": "weight"})


# ----------------------------------------------------------------------------- links, names, files


def test_lastfm_shaped_folder_reads_through_the_links_file(tmp_path):
    d = write(tmp_path / "lfm", LASTFM)
    ds = read_tsv(d, **LASTFM_OPTS)
    assert ds.item_ids.tolist() == ["51", "52", "53", "54"] and ds.user_ids.tolist() == ["2", "3"]
    kg = ds.kg
    # items 51, 52, 54 are entities 0, 1, 3 (dense item ids); the KG's "0", "1", "2" are those items
    assert kg.heads.tolist() == [0, 1, 3]
    assert kg.entity_ids[:4].tolist() == ["0", "1", "", "2"] and kg.entity_ids[4:].tolist() == ["100", "101"]
    assert ds.stats["items_with_kg"] == 3 and ds.stats["kg_heads_items"] == 3 and ds.stats["kg_heads"] == 3
    assert ds.provenance["kg_ids"] == "links" and ds.provenance["format"] == "tsv"
    assert ds.provenance["files"] == {"interactions": "user_artists.dat", "kg": "kg.txt",
                                      "links": "item_index2entity_id.txt"}
    assert any("column 'weight'" in w and "ignored" in w for w in ds.warnings)
    assert not any("file not read" in w for w in ds.warnings)


def test_kg_without_links_is_refused_naming_kg_and_links(tmp_path):
    """The Last.fm mistake: kg.txt copied to kg.tsv joined entity ids to artist ids by equal
    numbers.  Now a KG reaches items only through links or a stated kg_ids: items."""
    d = write(tmp_path / "x", {"interactions.tsv": LASTFM["user_artists.dat"], "kg.tsv": LASTFM["kg.txt"]})
    with pytest.raises(DataError) as e:
        read_tsv(d)
    msg = str(e.value)
    assert msg.startswith(f"{d / 'kg.tsv'}: a KG reaches the items only through a links file")
    assert str(d / "links.tsv") in msg and "kg_ids: items" in msg and "\n" not in msg
    ds = read_tsv(d, kg_ids="items")  # stated: KG head ids are item ids
    assert ds.provenance["kg_ids"] == "items"
    with pytest.raises(DataError, match="exclude each other"):
        read_tsv(write(tmp_path / "y", {**LASTFM, "links.tsv": "51\t0\n"}), kg_ids="items",
                 files={"interactions": "user_artists.dat", "kg": "kg.txt"})


def test_unread_files_are_named(tmp_path):
    d = write(tmp_path / "u", {**LASTFM, "README.md": "hello\n"})
    ds = read_tsv(d, **LASTFM_OPTS)
    assert [w for w in ds.warnings if w.startswith("file not read")] == [
        "file not read: README.md (not a file of this format; see docs/data.md)"]
    d2 = write(tmp_path / "k", {"train.txt": "0 1\n", "notes.txt": "x\n"})
    from jnskr.data import read_kgat

    assert any(w.startswith("file not read: notes.txt") for w in read_kgat(d2).warnings)


def test_names_file_and_default_file_names(tmp_path):
    d = write(tmp_path / "n", {
        "interactions.csv": "user,item\nu1,i1\nu1,i2\nu2,i1\n",
        "kg.csv": "head,relation,tail\ne1,genre,jazz\n",
        "links.csv": "item,entity\ni1,e1\n",
        "names.csv": 'item,name\ni1,"Blue, Kind of"\ni2,Giant Steps\n',
    })
    ds = read_tsv(d)
    assert ds.item_names.tolist() == ["Blue, Kind of", "Giant Steps"]  # RFC 4180: the comma stays
    assert ds.kg.heads.tolist() == [0]


def test_links_file_errors(tmp_path):
    d = write(tmp_path / "l", {"interactions.tsv": "u\ti1\nu\ti2\n", "kg.tsv": "e1\tr\te2\n",
                               "links.tsv": "i1\te1\ni1\te2\n"})
    with pytest.raises(DataError, match=r"links.tsv:2: item 'i1' is linked to two entities"):
        read_tsv(d)
    with pytest.raises(DataError, match=r"missing file \(named as the links file\)"):
        read_tsv(d, files={"links": "nope.tsv"})
    d2 = write(tmp_path / "l2", {"interactions.tsv": "u\ti1\n", "links.tsv": "i1\te1\n"})
    with pytest.raises(DataError, match="a links file without a KG file"):
        read_tsv(d2)


# ----------------------------------------------------------------------------- columns, separators


def test_columns_by_name_and_position_and_separators(tmp_path):
    d = write(tmp_path / "c", {"r.dat": "1::10::5::100\n1::11::3::90\n2::10::4::80\n"})
    ds = read_tsv(d / "r.dat", separator="::", columns={"user": 1, "item": 2})
    assert ds.user_ids.tolist() == ["1", "2"] and ds.item_ids.tolist() == ["10", "11"]
    assert any("columns of r.dat not read: column 3, column 4" in w for w in ds.warnings)
    d2 = write(tmp_path / "s", {"x.csv": "a;b;user\n1;i1;u1\n2;i2;u1\n"})
    ds2 = read_tsv(d2 / "x.csv", separator="semicolon", columns={"item": "b"})
    assert ds2.user_ids.tolist() == ["u1"] and ds2.item_ids.tolist() == ["i1", "i2"]
    with pytest.raises(DataError, match=r"x.csv:1: no column 'nope' \(item\) in the header \(columns: a, b, user\)"):
        read_tsv(d2 / "x.csv", separator="semicolon", columns={"item": "nope"})
    d3 = write(tmp_path / "h", {"x.tsv": "u1\ti1\n"})
    with pytest.raises(DataError, match=r"x.tsv:1: no header line, so no column 'userID'"):
        read_tsv(d3 / "x.tsv", columns={"user": "userID"})


def test_quoted_csv_field_with_comma_is_one_field(tmp_path):
    d = write(tmp_path / "q", {"x.csv": 'user,item\nu1,"Bach, J.S."\nu1,"say ""hi"""\nu2,plain\n'})
    ds = read_tsv(d / "x.csv")
    assert ds.item_ids.tolist() == ["Bach, J.S.", "plain", 'say "hi"']


def test_unicode_digit_ids_are_labels_in_tsv_and_recbole(tmp_path):
    d = write(tmp_path / "t", {"x.tsv": "u²\t²\nu²\t3\nu1\t²\n"})
    ds = read_tsv(d / "x.tsv")  # "²" passes str.isdigit but is no decimal id: a string label
    assert sorted(ds.item_ids.tolist()) == ["3", "²"]
    r = write(tmp_path / "rb", {"rb.inter": "user_id:token\titem_id:token\n²\t1\n²\t2\n1\t²\n"})
    assert sorted(read_recbole(r).user_ids.tolist()) == ["1", "²"]


# ----------------------------------------------------------------------------- weights


def test_weight_threshold_keeps_rows_at_or_above(tmp_path):
    d = write(tmp_path / "w", LASTFM)
    ds = read_tsv(d, **LASTFM_OPTS, weight="threshold", weight_threshold=10, split="ratio")
    assert set(ds.item_ids.tolist()) == {"51", "52"}  # 53 (9) and 54 (7) are below 10
    assert ds.train.values is None and ds.provenance["weight"] == {
        "use": "threshold", "column": "weight", "threshold": 10.0, "dropped": 2}


def test_weight_confidence_carries_values_through_split_cache_import(tmp_path):
    d = write(tmp_path / "w", LASTFM)
    ds = read_tsv(d, **LASTFM_OPTS, weight="confidence", confidence_norm="none")  # values as given
    got = {}
    for part in (ds.train, ds.test):
        for u in range(part.n_users):
            for i, v in zip(part.row(u), part.row_values(u)):
                got[(ds.user_ids[u], ds.item_ids[i])] = v
    assert got == {("2", "51"): 13883, ("2", "52"): 11690, ("2", "53"): 9, ("3", "51"): 20, ("3", "54"): 7}
    save_dataset(ds, tmp_path / "c.npz")
    back = load_saved(tmp_path / "c.npz")
    assert np.array_equal(back.train.values, ds.train.values) and back.provenance == ds.provenance
    assert back.fingerprint() == ds.fingerprint()
    a, b = holdout_split(ds.train, 0.5, 0)
    assert sorted(np.concatenate([a.values, b.values]).tolist()) == sorted(ds.train.values.tolist())
    t = ds.train.transpose()
    assert sorted(t.values.tolist()) == sorted(ds.train.values.tolist())
    from jnskr.data import registry

    imported = registry.import_dataset(d, "tsv", "lfm", **LASTFM_OPTS, weight="confidence")
    again = load_dataset("lfm")
    assert np.array_equal(again.train.values, imported.train.values)


def test_negative_confidence_and_bad_weights_name_the_line(tmp_path):
    d = write(tmp_path / "n", {"x.tsv": "user\titem\tweight\nu\ti\t1\nu\tj\t-2\n"})
    with pytest.raises(DataError, match=r"x.tsv:3: negative weight -2"):
        read_tsv(d / "x.tsv", weight="confidence")
    d2 = write(tmp_path / "b", {"x.tsv": "user\titem\tweight\nu\ti\t1\nu\tj\tlots\n"})
    with pytest.raises(DataError, match=r"x.tsv:3: weight \(weight\) 'lots' is not a finite number"):
        read_tsv(d2 / "x.tsv", weight="threshold", weight_threshold=1)
    assert read_tsv(d2 / "x.tsv").n_items == 2  # ignored weights are not parsed
    with pytest.raises(DataError, match="needs a weight column"):
        read_tsv(write(tmp_path / "c", {"x.tsv": "u\ti\n"}) / "x.tsv", weight="confidence")


def test_from_pairs_sums_duplicate_values():
    x = Interactions.from_pairs(np.array([0, 0, 1, 0]), np.array([2, 1, 0, 2]), 2, 3, np.array([1.0, 2.0, 3.0, 4.0]))
    assert x.indices.tolist() == [1, 2, 0] and x.values.tolist() == [2.0, 5.0, 3.0]


# ----------------------------------------------------------------------------- splits


def _full(n_users=30, n_items=40, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, n_users, 500)
    i = rng.integers(0, n_items, 500)
    return u, i, rng.random(500) * 1000


def test_leave_one_out_and_time_splits():
    u, i, t = _full()
    tr, te, info = split_pairs(u, i, 30, 40, method="leave_one_out", seed=3)
    full = Interactions.from_pairs(u, i, 30, 40)
    assert info == {"method": "leave_one_out", "order": "random", "seed": 3}
    assert te.user_counts().tolist() == [1 if n >= 2 else 0 for n in full.user_counts()]
    tr2, te2, info2 = split_pairs(u, i, 30, 40, method="leave_one_out", seed=3, times=t)
    assert info2["order"] == "time"
    from jnskr.data.split import pair_times

    pt = pair_times(u, i, 40, t)
    for x in range(30):  # the held-out item is each user's latest
        a, b = full.indptr[x], full.indptr[x + 1]
        if b - a >= 2:
            latest = full.indices[a + int(np.argmax(pt[a:b]))]
            assert te2.row(x).tolist() == [latest]
    tr3, te3, info3 = split_pairs(u, i, 30, 40, method="time", test_ratio=0.25, times=t)
    from jnskr.data.split import n_test_items

    for x in range(30):
        a, b = full.indptr[x], full.indptr[x + 1]
        k = n_test_items(b - a, 0.25)
        assert len(te3.row(x)) == k
        if k:
            assert pt[a:b][np.isin(full.indices[a:b], te3.row(x))].min() >= pt[a:b][
                np.isin(full.indices[a:b], tr3.row(x))].max()
    with pytest.raises(ValueError, match="needs timestamps"):
        split_pairs(u, i, 30, 40, method="time")
    assert leave_one_out_split(full, 1)[1].nnz == te.nnz and time_split(full, pt)[1].nnz > 0


def test_split_options_through_the_reader(tmp_path):
    lines = ["user,item,timestamp"] + [f"u{k % 3},i{k},{k}" for k in range(30)]
    d = write(tmp_path / "t", {"x.csv": "\n".join(lines) + "\n"})
    ds = read_tsv(d / "x.csv", split="time", test_ratio=0.2)
    assert ds.provenance["split"] == {"method": "time", "test_ratio": 0.2, "seed": 2020}
    for u in range(3):  # the latest 2 of each user's 10 items
        assert sorted(int(ds.item_ids[i][1:]) for i in ds.test.row(u)) == [24 + u, 27 + u]
    loo = read_tsv(d / "x.csv", split="leave_one_out")
    assert loo.test.user_counts().tolist() == [1, 1, 1] and loo.provenance["split"]["order"] == "time"
    with pytest.raises(DataError, match="split: time needs a timestamp column"):
        read_tsv(write(tmp_path / "n", {"y.csv": "user,item\na,b\na,c\n"}) / "y.csv", split="time")
    iso = write(tmp_path / "iso", {"z.csv": "user,item,time\na,x,2020-01-02\na,y,2020-01-01T10:00\na,z,2019-12-31\n"})
    assert read_tsv(iso / "z.csv", split="leave_one_out").item_ids[
        read_tsv(iso / "z.csv", split="leave_one_out").test.row(0)].tolist() == ["x"]


def test_kgat_and_given_test_record_the_split(tmp_path):
    from jnskr.data import read_kgat

    ds = read_kgat(DATA / "kgat_tiny")
    assert ds.provenance["split"] == {"method": "given"} and ds.provenance["kg_ids"] == "kgat"


# ----------------------------------------------------------------------------- config


def test_data_config_keys_are_strict_and_reach_the_reader(tmp_path):
    cfg = DataConfig(files={"interactions": "user_artists.dat", "links": "item_index2entity_id.txt", "kg": "kg.txt"},
                     columns={"user": "userID", "item": 2}, weight="confidence", split="leave_one_out",
                     test_seed=7, max_memory_gb=4)
    opts = cfg.reader_options()
    assert opts == {"files": {"interactions": "user_artists.dat", "kg": "kg.txt", "links": "item_index2entity_id.txt"},
                    "columns": {"user": "userID", "item": 2}, "weight": "confidence", "split": "leave_one_out",
                    "seed": 7, "max_memory": 4e9}
    assert DataConfig().reader_options() == {}
    from pydantic import ValidationError

    for bad in ({"weight": "threshold"}, {"test_ratio": 1.0}, {"columns": {"user": 0}}, {"separator": "ab"},
                {"kg_ids": "maybe"}, {"files": {"kgg": "x"}}, {"weight_threshold": float("nan"), "weight": "threshold"},
                {"max_memory_gb": 0}):
        with pytest.raises(ValidationError):
            DataConfig(**bad)
    d = write(tmp_path / "lfm", LASTFM)
    ds = load_dataset(d, **opts)
    assert ds.provenance["split"]["method"] == "leave_one_out" and ds.train.values is not None
    with pytest.raises(DataError, match="option columns does not apply to the kgat format"):
        load_dataset(DATA / "kgat_tiny", columns={"user": 1})


# ----------------------------------------------------------------------------- the real originals


@pytest.mark.slow
def test_lastfm_originals_reproduce_kgcn_music_sizes():
    orig = shared_dataset("kgcn-music") / "original"
    ds = read_tsv(orig, files={"interactions": "user_artists.dat", "links": "item_index2entity_id.txt",
                               "kg": "kg.txt"}, columns={"user": "userID", "item": "artistID"}, link_only=True)
    ref = load_dataset(orig.parent, cache=False)
    assert (ds.n_users, ds.n_items) == (ref.n_users, ref.n_items) == (1872, 3846)
    assert ds.train.nnz + ds.test.nnz == ref.train.nnz + ref.test.nnz == 21173
    assert (ds.kg.n_triples, ds.kg.n_entities, ds.kg.n_relations) == (15518, 9366, 60)
    assert ds.stats["items_with_kg"] == 3846 and ds.stats["kg_heads_items"] == ds.stats["kg_heads"] == 3846
    full = read_tsv(orig, files={"interactions": "user_artists.dat", "links": "item_index2entity_id.txt",
                                 "kg": "kg.txt"})
    assert full.n_items == 17632 and full.stats["items_with_kg"] == 3846


def test_load_configured_and_options_on_an_imported_name(tmp_path):
    from jnskr.data import load_configured, registry

    d = write(tmp_path / "lfm", LASTFM)
    cfg = DataConfig(dataset=None, path=str(d), files=LASTFM_OPTS["files"], columns=LASTFM_OPTS["columns"],
                     weight="confidence")
    ds = load_configured(cfg)
    assert ds.train.values is not None and ds.provenance["kg_ids"] == "links"
    registry.import_dataset(d, "tsv", "lfm2", **LASTFM_OPTS)
    assert load_configured(DataConfig(dataset="lfm2")).n_items == 4
    with pytest.raises(DataError, match="lfm2 is an imported dataset, read already: options \\(weight\\)"):
        load_dataset("lfm2", weight="confidence")
