"""Batch recommendations to files, similar items and embedding export."""

import csv
import json
import sys

import numpy as np
import pytest
import torch

from jnskr.api import Recommender
from jnskr.cli.main import _register, run
from conftest import fit_runs
from jnskr.errors import JnskrError
from jnskr.export import output_format
from jnskr.serve.engine import Engine

_register()
import jnskr.cli.use  # noqa: E402,F401


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return fit_runs(tmp_path_factory.mktemp("export"), ("jnskr", "enmf", "popularity"))


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_all_users_csv_matches_single_user_recommend(runs, tmp_path):
    ds = runs["ds"]
    out = tmp_path / "recs.csv"
    assert run(["recommend", str(runs["jnskr"]), "--all", "--k", "7", "--output", str(out), "--batch-size", "13"]) == 0
    rows = _read_csv(out)
    assert list(rows[0]) == ["user", "item", "rank", "score", "item_name"]
    assert len(rows) == ds.n_users * 7
    rec = Recommender.load(runs["jnskr"])
    by_user: dict[str, list[dict]] = {}
    for r in rows:
        by_user.setdefault(r["user"], []).append(r)
    assert list(by_user) == [f"u{u}" for u in range(ds.n_users)]  # raw ids, run order
    for u in (0, 17, 59):
        got = by_user[f"u{u}"]
        assert [int(r["rank"]) for r in got] == list(range(1, 8))
        want_ids, want_scores = rec.recommend(f"u{u}", k=7)
        assert [r["item"] for r in got] == want_ids.tolist()
        np.testing.assert_allclose([float(r["score"]) for r in got], want_scores, rtol=1e-5)
        assert [r["item_name"] for r in got] == [f"Item {i[1:]}" for i in want_ids]
        assert not {f"i{i}" for i in ds.train.row(u)} & {r["item"] for r in got}


def test_keep_seen_jsonl_users_file_and_candidate_items(runs, tmp_path):
    ds = runs["ds"]
    users = tmp_path / "users.txt"
    users.write_text("u3\n\nu5\nu3\n")
    items = tmp_path / "items.txt"
    allowed = [f"i{i}" for i in range(0, 40, 3)]
    items.write_text("\n".join(allowed) + "\n")
    out = tmp_path / "r.jsonl"
    assert run(["recommend", str(runs["jnskr"]), "--users", str(users), "--items", str(items), "--k", "100",
                "--keep-seen", "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["user"] for r in rows] == ["u3"] * len(allowed) + ["u5"] * len(allowed)  # k capped by candidates
    assert {r["item"] for r in rows} == set(allowed)
    # --keep-seen: training items may appear; without it they may not
    seen3 = {f"i{i}" for i in ds.train.row(3)} & set(allowed)
    assert seen3 and seen3 <= {r["item"] for r in rows if r["user"] == "u3"}
    assert run(["recommend", str(runs["jnskr"]), "--users", str(users), "--items", str(items), "--k", "100",
                "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert not seen3 & {r["item"] for r in rows if r["user"] == "u3"}


def test_parquet_round_trip(runs, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "r.parquet"
    assert run(["recommend", str(runs["jnskr"]), "--all", "--k", "3", "--output", str(out)]) == 0
    t = pq.read_table(out)
    assert t.column_names == ["user", "item", "rank", "score", "item_name"]
    assert t.num_rows == runs["ds"].n_users * 3
    assert t.column("rank").to_pylist()[:3] == [1, 2, 3]


def test_parquet_without_pyarrow_is_one_clear_line(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    out = tmp_path / "r.parquet"
    assert run(["recommend", str(runs["jnskr"]), "--all", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "needs pyarrow" in err and "Traceback" not in err and not out.exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--all"], "--all needs --output"),
        (["--user", "u1", "--all"], "exactly one of"),
        ([], "exactly one of"),
        (["--all", "--output", "x.xlsx"], "unknown format '.xlsx'"),
        (["--user", "nobody"], "unknown user 'nobody'"),
    ],
)
def test_recommend_argument_errors_exit_2(runs, tmp_path, capsys, args, message):
    assert run(["recommend", str(runs["jnskr"]), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_ids_in_files_name_the_file(runs, tmp_path, capsys):
    users = tmp_path / "users.txt"
    users.write_text("u1\nghost\n")
    assert run(["recommend", str(runs["jnskr"]), "--users", str(users), "--output", str(tmp_path / "o.csv")]) == 2
    assert "users.txt: unknown user 'ghost'" in capsys.readouterr().err.replace("\n", "")
    items = tmp_path / "items.txt"
    items.write_text("i1\ni999\n")
    assert run(["recommend", str(runs["jnskr"]), "--user", "u1", "--items", str(items)]) == 2
    assert "items.txt: unknown item 'i999'" in capsys.readouterr().err.replace("\n", "")
    assert not (tmp_path / "o.csv").exists()


def test_popularity_and_enmf_runs_export_recommendations(runs, tmp_path):
    for model in ("popularity", "enmf"):
        out = tmp_path / f"{model}.csv"
        assert run(["recommend", str(runs[model]), "--all", "--k", "5", "--output", str(out)]) == 0
        assert len(_read_csv(out)) == runs["ds"].n_users * 5


def test_similar_is_cosine_in_q_space(runs, tmp_path, capsys):
    eng = Engine(Recommender.load(runs["jnskr"]))
    idx, scores = eng.similar(eng.item_index("i6"), k=5)
    q = eng.cat.q.numpy().astype(np.float64)
    cos = q @ q[6] / (np.linalg.norm(q, axis=1) * np.linalg.norm(q[6]))
    cos[6] = -np.inf
    assert idx[0].tolist() == np.argsort(-cos)[:5].tolist()
    np.testing.assert_allclose(scores[0], np.sort(cos)[::-1][:5], rtol=1e-5)
    ids, cosines = Recommender.load(runs["jnskr"]).similar("i6", k=5)
    assert ids.tolist() == [f"i{i}" for i in np.argsort(-cos)[:5]]
    np.testing.assert_allclose(cosines, scores[0], rtol=1e-6)
    assert run(["similar", str(runs["jnskr"]), "--item", "i6", "--k", "5"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "similar to i6 (Item 6)" in out and "cosine" in out
    assert run(["similar", str(runs["jnskr"]), "--item", "i6", "--output", str(tmp_path / "s.csv")]) == 0
    assert list(_read_csv(tmp_path / "s.csv")[0]) == ["item", "rank", "score", "item_name"]
    assert run(["similar", str(runs["jnskr"]), "--item", "zzz"]) == 2
    assert run(["similar", str(runs["popularity"]), "--item", "i6"]) == 2


def test_export_embeddings_reproduce_the_scores(runs, tmp_path, capsys):
    out = tmp_path / "emb"
    assert run(["export-embeddings", str(runs["jnskr"]), "--output", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"users.npy", "users.tsv", "items.npy", "items_base.npy", "items.tsv", "entities.npy", "entities.tsv",
            "relations.npy", "relations.tsv", "h.npy", "manifest.json"} <= names
    P, Q, h = np.load(out / "users.npy"), np.load(out / "items.npy"), np.load(out / "h.npy")
    rec = Recommender.load(runs["jnskr"])
    np.testing.assert_allclose((P * h) @ Q.T, rec.score(torch.arange(runs["ds"].n_users)), rtol=1e-4, atol=1e-6)
    users = (out / "users.tsv").read_text().splitlines()
    assert users[0] == "row\tid" and users[1] == "0\tu0" and len(users) == len(P) + 1
    items = (out / "items.tsv").read_text().splitlines()
    assert items[1] == "0\ti0\tItem 0"
    ents = (out / "entities.tsv").read_text().splitlines()
    assert len(ents) == len(np.load(out / "entities.npy")) + 1
    rels = (out / "relations.tsv").read_text().splitlines()
    assert rels[1].split("\t")[1].startswith("r") and len(rels) == len(np.load(out / "relations.npy")) + 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"]["items.npy"]["shape"] == list(Q.shape)
    # ENMF: users, items, h only; popularity: a clear error
    assert run(["export-embeddings", str(runs["enmf"]), "--output", str(tmp_path / "e2")]) == 0
    assert not (tmp_path / "e2" / "entities.npy").exists()
    assert run(["export-embeddings", str(runs["popularity"]), "--output", str(tmp_path / "e3")]) == 2
    assert "no embeddings" in capsys.readouterr().err


def test_output_format_helper():
    assert output_format("-") == "jsonl" and output_format("a/b.CSV") == "csv"
    with pytest.raises(JnskrError, match="unknown format"):
        output_format("recs")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_output_never_replaces_a_users_file_but_replaces_an_earlier_export(runs, tmp_path, capsys, suffix):
    """Issue 20 class 2: `recommend/similar --output` replaced any file; now only an earlier export,
    or anything with --overwrite (checked before the run is loaded)."""
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    mine = tmp_path / f"mine{suffix}"
    mine.write_bytes(b"my own notes\n")
    for cmd in (["recommend", str(runs["jnskr"]), "--user", "u1"], ["similar", str(runs["jnskr"]), "--item", "i1"]):
        assert run([*cmd, "--output", str(mine)]) == 2
        err = capsys.readouterr().err
        assert err.count("error:") == 1 and "was not written by jnskr" in err and "--overwrite" in err
        assert mine.read_bytes() == b"my own notes\n"
        out = tmp_path / f"{cmd[0]}{suffix}"
        assert run([*cmd, "--output", str(out)]) == 0
        assert run([*cmd, "--output", str(out)]) == 0  # an earlier export of ours: replaced
        capsys.readouterr()
    assert run(["recommend", str(runs["jnskr"]), "--user", "u1", "--output", str(mine), "--overwrite"]) == 0
    assert mine.read_bytes() != b"my own notes\n"
