"""Fixtures are hand-made and tiny (tests/data/README.md): a dataset file copied into tests/data
by mistake would fail here, whatever its name."""

from pathlib import Path

DATA = Path(__file__).parents[1] / "data"
LIMIT = 4096  # bytes; the largest hand-made data file is a few hundred
#: files of the data formats the readers take (configs, recorded metrics and expectations are not data)
DATA_SUFFIXES = {".txt", ".tsv", ".csv", ".dat", ".npz", ".gz", ".zip", ".inter", ".kg", ".link", ".item",
                 ".user", ".parquet", ".fixture"}
NOT_DATA = {"bad/EXPECTED.tsv"}  # the corpus's expected error per case


def test_every_fixture_data_file_is_tiny():
    files = [p for p in DATA.rglob("*") if p.is_file() and not p.is_symlink()
             and any(s in DATA_SUFFIXES for s in p.suffixes) and str(p.relative_to(DATA)) not in NOT_DATA]
    assert len(files) > 50  # the corpus is there
    big = [(str(p.relative_to(DATA)), p.stat().st_size) for p in files if p.stat().st_size > LIMIT]
    assert not big, big


def test_no_fixture_is_stored_under_a_dataset_file_name():
    """KG files are stored under neutral names (conftest.STORED_AS) and get their format names only
    in the private copy the tests read (conftest.DATA)."""
    from conftest import DATA as COPY, STORED_AS

    assert not [str(p.relative_to(DATA)) for p in DATA.rglob("*") if p.name in STORED_AS.values()]
    stored = [p for p in DATA.rglob("*.fixture")]
    assert stored and all(p.name in STORED_AS for p in stored)
    for p in stored:  # each one readable under its format name, byte for byte
        twin = COPY / p.relative_to(DATA).with_name(STORED_AS[p.name])
        assert twin.read_bytes() == p.read_bytes()
