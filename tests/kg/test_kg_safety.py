"""`jnskr kg` results are never silently wrong (issue 20, classes 3, 6, 7): an empty or
unseen-only validation split is an error, NaN scores rank last, a cached benchmark cut short is
caught, valid/test triples also in train are a warning, metrics.json is strict JSON, the size
estimate runs before training, `--memory-mb nan` and malformed run folders are one line."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch

from jnskr.cli.main import run
from jnskr.errors import JnskrError
from jnskr.kg.checks import check_splits
from jnskr.kg.config import build_config
from jnskr.kg.data import read_triples_dir
from jnskr.kg.evaluate import filtered_ranks, rank_metrics
from jnskr.locks import RunLock
from conftest import DATA
from test_reliability_files import _one_error

TINY = DATA / "kg_tiny"
FAST = ["--set", "dim=4", "--set", "train.epochs=2", "--set", "train.eval_every=1", "--set", "train.batch_size=16"]


def _kg(tmp_path, valid: str | None = None, test: str | None = None):
    d = tmp_path / "kg"
    shutil.copytree(TINY, d)
    if valid is not None:
        (d / "valid.txt").write_text(valid)
    if test is not None:
        (d / "test.txt").write_text(test)
    return d


def _train(data, out, *extra) -> int:
    return run(["kg", "train", "--data", str(data), "--out", str(out), *FAST, *extra])


@pytest.mark.parametrize("valid,words", [("", "validation split is empty"),
                                         ("nobody\tlives_in\tnowhere\n", "never saw")])
def test_unusable_validation_split_is_an_error_not_an_untrained_model(valid, words, tmp_path, capsys):
    if valid:  # an unseen-only split: its entities occur in no training triple
        rel = (TINY / "train.txt").read_text().split("\t")[1]
        valid = valid.replace("lives_in", rel)
    data = _kg(tmp_path, valid=valid)
    assert _train(data, tmp_path / "run") == 2
    _one_error(capsys.readouterr().err, words)
    assert not (tmp_path / "run").exists()


def test_nan_scores_rank_last_not_first(caplog):
    scores = torch.tensor([[float("nan"), 0.5, 0.2, 0.1], [0.9, float("nan"), 0.2, 0.1]])

    def score(a, b):
        return scores[a].clone()

    def known(a, b):
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)

    with caplog.at_level(logging.WARNING, logger="jnskr"):
        ranks = filtered_ranks(score, torch.tensor([0, 1]), torch.tensor([0, 0]), torch.tensor([0, 0]), known, 4)
    assert ranks.tolist() == [4.0, 1.0]  # a NaN target is last; a NaN rival never beats a real score
    assert rank_metrics(ranks[:1])["mrr"] == 0.25  # before: 1.0
    assert "scored their true entity NaN" in caplog.text


def test_cached_benchmark_cut_short_is_caught(tmp_path, monkeypatch):
    from test_kg_data import _tiny_archive

    import jnskr.kg.datasets as datasets

    monkeypatch.setenv("JNSKR_DATA", str(tmp_path / "cache"))
    served, info = _tiny_archive(tmp_path)
    monkeypatch.setitem(datasets.REGISTRY, "tiny", info)
    dest = datasets.fetch("tiny", base_url=served.as_uri())
    assert datasets.load_triples("tiny").train.shape[0] == 18
    text = (dest / "train.txt").read_bytes()
    (dest / "train.txt").write_bytes(text[: len(text) // 2])  # a copy or a download cut short
    with pytest.raises(JnskrError, match="damaged or cut short"):
        datasets.load_triples("tiny")


def test_valid_and_test_triples_also_in_train_are_a_warning(tmp_path, caplog):
    train_line = (TINY / "train.txt").read_text().splitlines()[0]
    data = read_triples_dir(_kg(tmp_path, test=(TINY / "test.txt").read_text() + train_line + "\n"))
    with caplog.at_level(logging.WARNING, logger="jnskr"):
        check_splits(build_config("default"), data)
    assert "1 of 4 test triples are also training triples" in caplog.text


def test_metrics_json_never_holds_bare_nan(tmp_path):
    rel = (TINY / "train.txt").read_text().split("\t")[1]
    data = _kg(tmp_path, test=f"stranger\t{rel}\tnowhere\n")  # no test triple survives the dropped rule
    assert _train(data, tmp_path / "run") == 0
    text = (tmp_path / "run" / "metrics.json").read_text()

    def refuse(name):
        raise ValueError(f"bare {name} in metrics.json")

    metrics = json.loads(text, parse_constant=refuse)
    assert metrics["test"]["dropped"]["mrr"] is None and metrics["test"]["dropped"]["triples"] == 0
    assert run(["kg", "evaluate", str(tmp_path / "run")]) == 0


def test_kg_train_runs_the_size_estimate_first(tmp_path, capsys, monkeypatch):
    from jnskr.kg.models import ModelSpec

    def no_tables(*a, **k):
        raise AssertionError("tables allocated before the size estimate")

    monkeypatch.setattr(ModelSpec, "init_tables", no_tables)
    assert _train(TINY, tmp_path / "run", "--set", "dim=1000000000") == 2
    _one_error(capsys.readouterr().err, "dim=1000000000", "would need about", "memory limit")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-5"])
def test_evaluate_memory_mb_must_be_finite_and_positive(value, tmp_path, capsys):
    assert run(["kg", "evaluate", str(tmp_path), "--memory-mb", value]) == 2
    _one_error(capsys.readouterr().err, "--memory-mb")


@pytest.fixture(scope="module")
def kg_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("kgrun") / "run"
    assert _train(TINY, out) == 0
    return out


@pytest.mark.parametrize("name,content,words", [
    ("id_maps.json", "[1, 2]", "expected a JSON object"),
    ("id_maps.json", '{"entity_ids": ["a"]}', "relation_ids must be"),
    ("id_maps.json", '{"entity_ids": [1, 2], "relation_ids": ["r"]}', "entity_ids must be"),
    ("id_maps.json", "{", "invalid JSON"),
    ("metrics.json", '{"run_kind": "something else"}', "not a jnskr kg run folder"),
    ("config.yaml", "dim: -3\n", "not a valid KG config"),
    ("triples.safetensors", b"garbage", "safetensors"),
])
def test_malformed_kg_run_folders_are_one_line(name, content, words, kg_run, tmp_path, capsys):
    r = tmp_path / "r"
    shutil.copytree(kg_run, r)
    (r / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    assert run(["kg", "evaluate", str(r)]) == 2
    _one_error(capsys.readouterr().err, words)


@pytest.mark.parametrize("tensors,words", [
    ({"train": torch.zeros(2, 2, dtype=torch.long)}, "[n, 3] integer"),
    ({"train": torch.full((2, 3), 999, dtype=torch.long), "valid": torch.zeros(1, 3, dtype=torch.long),
      "test": torch.zeros(1, 3, dtype=torch.long)}, "outside"),
    ({"train": torch.zeros(2, 3), "valid": torch.zeros(1, 3, dtype=torch.long),
      "test": torch.zeros(1, 3, dtype=torch.long)}, "integer"),
])
def test_malformed_kg_triples_are_one_line(tensors, words, kg_run, tmp_path, capsys):
    from safetensors.torch import save_file

    r = tmp_path / "r"
    shutil.copytree(kg_run, r)
    save_file(tensors, str(r / "triples.safetensors"))
    assert run(["kg", "evaluate", str(r)]) == 2
    _one_error(capsys.readouterr().err, words)


def test_two_kg_trains_into_one_out(tmp_path, capsys):
    out = tmp_path / "run"
    lock = RunLock(out).acquire()  # another kg train holds the folder
    try:
        assert _train(TINY, out) == 2
    finally:
        lock.release()
    _one_error(capsys.readouterr().err, "is writing this run folder")  # (in-process here: "another call")
    assert not out.exists()
