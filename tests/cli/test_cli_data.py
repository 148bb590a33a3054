"""`jnskr data ...` round trips through the CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from jnskr.cli.main import run
from jnskr.data import registry as reg
from conftest import DATA, shared_dataset

FIX = DATA


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "jnskr-data"
    monkeypatch.setenv("JNSKR_DATA", str(d))
    monkeypatch.setenv("COLUMNS", "200")
    return d


def test_validate_ok_prints_table(capsys):
    rc = run(["data", "validate", str(FIX / "kgat_tiny")])
    out = capsys.readouterr().out
    assert rc == 0
    for label in ("users", "items", "train pairs", "test pairs", "KG triples", "entities", "relations",
                  "cold test items", "items without KG facts"):
        assert label in out
    assert "warning: 1 duplicate train items removed" in out
    assert "ok: " in out


@pytest.mark.parametrize("fmt, path", [("recbole", "recbole_tiny"), ("tsv", "tsv_tiny"), (None, "tsv_tiny")])
def test_validate_formats(capsys, fmt, path):
    args = ["data", "validate", str(FIX / path)] + (["--format", fmt] if fmt else [])
    args += ["--kg-ids", "items"] if path == "tsv_tiny" else []
    assert run(args) == 0
    assert "train pairs" in capsys.readouterr().out


def test_validate_error_is_one_line_exit_2(tmp_path, capsys):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "train.txt").write_text("0 1\n1 2 zz\n")
    rc = run(["data", "validate", str(d)])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{d / 'train.txt'}:2: non-integer token 'zz'" in err
    assert len(err.strip().splitlines()) == 1


def test_validate_wrong_format_option(capsys):
    assert run(["data", "validate", str(FIX / "kgat_tiny"), "--format", "csv"]) == 2
    assert "unknown format 'csv'" in capsys.readouterr().err


def test_validate_missing_train_real_data(capsys):
    d = shared_dataset("yelp2018")
    assert run(["data", "validate", str(d)]) == 2
    assert "train.txt: missing file: a KGAT folder needs train.txt" in capsys.readouterr().err


def test_import_list_and_load(capsys, data_home):
    rc = run(["data", "import", str(FIX / "recbole_tiny"), "--format", "recbole", "--name", "tiny"])
    out = capsys.readouterr().out
    assert rc == 0 and "imported as 'tiny'" in out
    assert (data_home / "tiny" / "dataset.npz").is_file()
    assert run(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "imported" in out and "ml-100k" in out and "not fetched" in out
    assert run(["data", "validate", "tiny"]) == 0


def test_import_bad_path(capsys, tmp_path):
    assert run(["data", "import", str(tmp_path / "nope"), "--format", "kgat", "--name", "x"]) == 2
    assert "nope" in capsys.readouterr().err


def test_fetch_prints_licence_and_offline_hint(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(reg, "KGAT_BASE_URL", (tmp_path / "offline").as_uri())
    rc = run(["data", "fetch", "amazon-book"])
    cap = capsys.readouterr()
    assert rc == 2
    assert "research use only" in cap.out and "KDD 2019" in cap.out and "SIGIR 2020" in cap.out
    assert "jnskr data import /path/to/amazon-book --format kgat --name amazon-book" in cap.err


def test_fetch_ml100k_prints_citations(capsys, monkeypatch):
    def fake(dest=None):
        Path(dest).mkdir(parents=True)
        for f in (FIX / "recbole_tiny").iterdir():
            (Path(dest) / f.name.replace("recbole_tiny", "ml-100k")).write_bytes(f.read_bytes())
        return Path(dest)

    monkeypatch.setattr(reg, "fetch_ml100k", fake)
    assert run(["data", "fetch", "ml-100k"]) == 0
    out = capsys.readouterr().out
    assert "Harper" in out and "KB4Rec" in out and "fetched into" in out


def test_fetch_unknown(capsys):
    assert run(["data", "fetch", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- own data (issue)


def test_validate_prints_each_warning_once(capsys):
    assert run(["data", "validate", str(FIX / "kgat_tiny")]) == 0
    cap = capsys.readouterr()
    both = cap.out + cap.err
    assert both.count("1 duplicate train items removed") == 1
    assert "KG coverage: 3 of 6 items have KG facts (50.0%); 3 of 4 distinct KG heads are items (75.0%)" in cap.out


def test_rich_markup_in_data_text_is_printed_as_is(tmp_path, capsys):
    d = tmp_path / "[serve]"
    d.mkdir()
    (d / "interactions.tsv").write_text("user\titem\n[parquet]\t[bold]x\n[parquet]\ty\n")
    (d / "[notes].txt").write_text("x\n")
    assert run(["data", "validate", str(d)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "file not read: [notes].txt" in out and "[serve]" in out


def test_rich_markup_in_an_error_line(tmp_path, capsys):
    assert run(["data", "validate", str(tmp_path / "nope[x]")]) == 2
    assert "nope[x]" in capsys.readouterr().err


def test_validate_and_import_take_reader_options(tmp_path, capsys, data_home):
    d = tmp_path / "lfm"
    d.mkdir()
    (d / "user_artists.dat").write_text("userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n2\t53\t9\n3\t51\t20\n")
    (d / "item_index2entity_id.txt").write_text("51\t0\r\n52\t1\r\n")
    (d / "kg.txt").write_text("0\tmusic.artist.origin\t100\r\n1\tmusic.artist.genre\t101\r\n")
    opts = ["--interactions", "user_artists.dat", "--links", "item_index2entity_id.txt", "--kg", "kg.txt",
            "--user-col", "userID", "--item-col", "artistID", "--weight", "confidence", "--split", "leave_one_out"]
    assert run(["data", "validate", str(d), *opts]) == 0
    out = capsys.readouterr().out
    assert "KG -> items: through the links file" in out and "split: leave_one_out" in out
    assert "weight: use confidence, column weight" in out
    assert run(["data", "validate", str(d), "--interactions", "user_artists.dat", "--kg", "kg.txt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "kg.txt: a KG reaches the items only through a links file" in err
    assert run(["data", "validate", str(d), *opts[:6], "--test-ratio", "1.5"]) == 2
    assert "bad option test_ratio: Input should be less than 1" in capsys.readouterr().err
    assert run(["data", "import", str(d), *opts, "--name", "lfm"]) == 0
    assert (data_home / "lfm" / "dataset.npz").is_file()
    back = reg.load_dataset("lfm")
    assert back.train.values is not None and back.provenance["kg_ids"] == "links"


def test_lastfm_originals_walk(capsys):
    orig = shared_dataset("kgcn-music") / "original"
    if not orig.is_dir():
        pytest.skip("../shared/data/kgcn-music/original is not available (real data; the test runs where it is)")
    assert run(["data", "validate", str(orig), "--interactions", "user_artists.dat", "--user-col", "userID",
                "--item-col", "artistID", "--links", "item_index2entity_id.txt", "--kg", "kg.txt"]) == 0
    out = capsys.readouterr().out
    assert "KG coverage: 3,846 of 17,632 items have KG facts (21.8%); 3,846 of 3,846 distinct KG heads" in out
    assert "file not read" not in out
    assert run(["data", "validate", str(orig), "--interactions", "user_artists.dat", "--kg", "kg.txt"]) == 2
    assert "item_index2entity_id.txt" not in capsys.readouterr().err  # it names what is expected: links.tsv


# ----------------------------------------------------------------------------- KG benchmarks (jnskr kg)


def test_kg_datasets_listed_and_fetched_through_jnskr_kg(monkeypatch, capsys, tmp_path):
    import sys
    import types

    calls = []
    fake = types.ModuleType("jnskr.kg.datasets")
    fake.REGISTRY = {n: {"description": f"{n} [triples]"} for n in ("fb15k-237", "wn18rr", "nations", "kinship", "umls")}
    fake.list_datasets = lambda: [{"name": n, "status": "not fetched", "description": i["description"]}
                                  for n, i in fake.REGISTRY.items()]

    def fetch(name, base_url=None, force=False):
        calls.append((name, base_url, force))
        return tmp_path / name

    fake.fetch = fetch
    pkg = sys.modules.get("jnskr.kg") or types.ModuleType("jnskr.kg")
    monkeypatch.setitem(sys.modules, "jnskr.kg", pkg)
    monkeypatch.setitem(sys.modules, "jnskr.kg.datasets", fake)
    monkeypatch.setattr(pkg, "datasets", fake, raising=False)
    assert run(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "wn18rr" in out and "nations [triples]" in out and "ml-100k" in out
    assert run(["data", "fetch", "nations", "--force"]) == 0
    assert calls == [("nations", None, True)] and "fetched nations into" in capsys.readouterr().out


def test_without_jnskr_kg_fetch_behaves_as_before(monkeypatch, capsys):
    import sys

    import jnskr

    monkeypatch.setitem(sys.modules, "jnskr.kg.datasets", None)  # import fails
    if "jnskr.kg" in sys.modules:
        monkeypatch.delattr(sys.modules["jnskr.kg"], "datasets", raising=False)
    assert run(["data", "fetch", "nations"]) == 2
    assert "unknown dataset 'nations'" in capsys.readouterr().err
    assert run(["data", "list"]) == 0
    assert "nations" not in capsys.readouterr().out


def test_validate_says_the_names_file_was_read_and_what_of_it_was_not(tmp_path, capsys):
    """Issue 21 item 12: `data validate` did not say that the names file was read, nor which of
    its columns were not."""
    d = tmp_path / "shop"
    d.mkdir()
    (d / "interactions.tsv").write_text("user\titem\n1\ta\n1\tb\n2\ta\n2\tc\n3\tb\n3\tc\n")
    (d / "names.tsv").write_text("item_id\tyear\ttitle\tgenre\na\t1999\tThe A\tx\nb\t2000\tThe B\ty\n")
    assert run(["data", "validate", str(d)]) == 0
    assert "names: read from names.tsv (item: item_id, name: title); not used: year, genre" in capsys.readouterr().out
    (d / "names.tsv").write_text("a\tThe A\nb\tThe B\n")
    assert run(["data", "validate", str(d)]) == 0
    assert "names: read from names.tsv (item: column 1, name: column 2); no other columns" in capsys.readouterr().out
    (d / "names.tsv").unlink()
    assert run(["data", "validate", str(d)]) == 0
    assert "names:" not in capsys.readouterr().out
