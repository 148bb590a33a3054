"""The public API on a tiny synthetic dataset: fit, score, recommend, save, load; protocols."""

import json

import numpy as np
import pytest
import torch

from jnskr.api import Recommender
from jnskr.config import build_config
from jnskr.errors import JnskrError


def _cfg(model="jnskr", **sets):
    over = [f"model={model}", "device=cpu", "train.epochs=10", "train.batch_size=16", "eval.ks=[5,10]",
            "jnskr.embed_dim=16", "enmf.embed_dim=16", "jnskr.c0=20", "jnskr.c1=20"]
    over += [f"{k}={v}" for k, v in sets.items()]
    return build_config("default", overrides=over)


def test_fit_writes_a_complete_run_folder_and_metrics_shape(synth, tmp_path):
    rec = Recommender(_cfg()).fit(synth, run_dir=tmp_path / "run")
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"model.safetensors", "structure.safetensors", "config.yaml", "id_maps.json", "metrics.json",
            "log.jsonl", "environment.json"} <= files
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for key in ("recall@10", "ndcg@10", "ndcg_kgat@10", "precision@10", "hit@10"):
        assert 0.0 <= m["test"][key] <= 1.0
        assert key in m["valid"]
    assert m["k_max"] == 100 and m["protocol"] == "standard" and m["best_epoch"] in (2, 4, 6, 8, 10)  # als: every 2
    env = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert env["seed"] == 2019 and env["torch"] == torch.__version__ and env["schema_version"] == 1
    lines = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    selection = [r for r in lines if not r.get("refit")]
    assert len(selection) == m["epochs_run"] and all("loss" in r for r in selection if "valid" in r)
    assert m["solver"] == "als" and m["refit"]["epochs"] == m["best_epoch"]
    assert len(lines) - len(selection) == m["best_epoch"]  # the refit's epochs, marked
    assert rec.metrics == m


def test_training_decreases_loss_and_beats_popularity(synth):
    rec = Recommender(_cfg(**{"train.epochs": 30})).fit(synth)
    losses = [h["loss"] for h in rec.trainer.history if "loss" in h]  # als: on evaluation sweeps
    assert len(losses) >= 2 and losses[-1] < losses[0]
    pop = Recommender(_cfg("popularity")).fit(synth)
    assert rec.metrics["test"]["recall@10"] > pop.metrics["test"]["recall@10"] + 0.1


def test_score_recommend_save_load_round_trip(synth, tmp_path):
    rec = Recommender(_cfg()).fit(synth, run_dir=tmp_path / "r")
    s = rec.score(["u3", "u7"])
    assert s.shape == (2, synth.n_items)
    ids, scores = rec.recommend("u3", k=5)
    assert ids.shape == (5,) and scores.shape == (5,) and np.all(np.diff(scores) <= 0)
    seen = {f"i{i}" for i in synth.train.row(3)}
    assert not seen & set(ids.tolist())
    loaded = Recommender.load(tmp_path / "r")
    assert np.allclose(loaded.score(["u3", "u7"]), s)
    ids2, scores2 = loaded.recommend("u3", k=5)
    assert ids2.tolist() == ids.tolist() and np.array_equal(scores2, scores)
    assert loaded.metrics["test"] == rec.metrics["test"]
    kept, _ = loaded.recommend("u3", k=synth.n_items, exclude_seen=False)
    assert seen <= set(kept.tolist())


def test_unknown_user_is_a_clear_error(synth):
    rec = Recommender(_cfg("enmf")).fit(synth)
    with pytest.raises(JnskrError, match="unknown user 'nobody'"):
        rec.recommend("nobody")


def test_paper_protocol_selects_on_test_and_says_so(synth, caplog):
    rec = Recommender(_cfg(**{"train.protocol": "paper", "train.epochs": 12})).fit(synth)
    m = rec.metrics
    assert m["protocol"] == "paper" and m["selected_on"] == "test" and m["valid"] == {}
    assert m["select_metric"] == "recall@10"
    assert m["best_epoch"] in (1, 11)  # evaluations after 1, 11, 21, ... epochs
    assert "TEST set" in caplog.text


@pytest.mark.parametrize("model", ["enmf", "popularity"])
def test_other_models_fit_and_round_trip(synth, tmp_path, model):
    rec = Recommender(_cfg(model)).fit(synth, run_dir=tmp_path / model)
    loaded = Recommender.load(tmp_path / model)
    assert np.allclose(loaded.score(["u1"]), rec.score(["u1"]))


def test_enmf_popularity_weighting_uses_item_batches(synth):
    rec = Recommender(_cfg("enmf", **{"enmf.weighting": "popularity"})).fit(synth)
    assert np.isfinite(rec.metrics["test"]["recall@10"])


def test_dataset_without_kg_trains_cf_only(synth, caplog):
    synth.kg = None
    rec = Recommender(_cfg()).fit(synth)
    assert rec.item_kg is None and "no KG" in caplog.text
    assert np.isfinite(rec.metrics["test"]["recall@10"])


def test_same_seed_same_result(synth):
    a = Recommender(_cfg(**{"train.epochs": 3})).fit(synth)
    b = Recommender(_cfg(**{"train.epochs": 3})).fit(synth)
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(va, vb), ka
