"""`ModelContract`: what every registered model promises, checked on the clustered synthetic
fixture (implicit's `RecommenderBaseTestMixin` is the model for this).  A model's test is

    class TestMyModel(ModelContract):
        model_name = "mymodel"
        explains = False          # capabilities the model claims (the rest must raise NotSupported)

Each class trains its model once (`trained`), then checks: training lowers the loss and beats
popularity; save/load round-trips bit-exactly; `score` returns a fresh [n, N] tensor;
`recommend` excludes seen items, agrees batched and single, honours `items=`, returns raw ids;
`predict` equals `score`; and each capability works, or raises `NotSupported`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import synthetic_dataset, tiny_config
from jnskr.api import Recommender
from jnskr.models import NotSupported

_TRAINED: dict = {}



def _score_tol(scores) -> float:
    """Float32 tolerance relative to the scale of a model's scores (not to each score: a score near
    zero has no relative precision of its own)."""
    return 1e-5 * float(np.abs(np.asarray(scores)).max()) + 1e-12

class ModelContract:
    model_name: str = ""
    epochs: int = 20
    trainable = True
    explains = False
    folds_in = True
    has_vectors = True
    has_similarity = False  # `similar` without item vectors (`Model.item_similarity`)
    overrides: tuple[str, ...] = ()
    min_recall_gain = 0.1  # over popularity, test recall@10

    @pytest.fixture(scope="class")
    def trained(self, tmp_path_factory):
        key = (self.model_name, self.epochs, self.overrides)
        if key not in _TRAINED:
            ds = synthetic_dataset()
            cfg = tiny_config(self.model_name, self.epochs)
            if self.overrides:
                from jnskr.config import config_to_dict, validate_config
                from jnskr.config import _set_dotted, parse_overrides

                d = config_to_dict(cfg)
                for k, v in parse_overrides(list(self.overrides)):
                    _set_dotted(d, k, v)
                cfg = validate_config(d)
            run = tmp_path_factory.mktemp(self.model_name) / "run"
            rec = Recommender(cfg).fit(ds, run_dir=run)
            _TRAINED[key] = (ds, rec, run)
        return _TRAINED[key]

    def test_training_lowers_the_loss_and_beats_popularity(self, trained):
        ds, rec, _ = trained
        if not self.trainable:
            assert rec.trainer is None
            return
        losses = [h["loss"] for h in rec.trainer.history if "loss" in h]  # als: on evaluation sweeps
        assert len(losses) >= 2 and losses[-1] < losses[0]
        pop = Recommender(tiny_config("popularity", 1)).fit(ds)
        assert rec.metrics["test"]["recall@10"] > pop.metrics["test"]["recall@10"] + self.min_recall_gain

    def test_save_load_round_trip_is_exact(self, trained):
        _, rec, run = trained
        loaded = Recommender.load(run)
        users = ["u0", "u7", "u59"]
        assert np.array_equal(loaded.score(users), rec.score(users))
        assert loaded.metrics == rec.metrics
        for (k, a), b in zip(rec.model.state_dict().items(), loaded.model.state_dict().values()):
            assert torch.equal(a, b), k

    def test_a_loaded_run_scores_the_same_on_every_device(self, trained, device):
        _, rec, run = trained
        loaded = Recommender.load(run, device=str(device))
        users = ["u0", "u9", "u33"]
        np.testing.assert_allclose(loaded.score(users), rec.score(users), rtol=1e-4, atol=1e-5)
        ids, _ = loaded.recommend(users, k=5)
        assert ids.shape == (3, 5)

    def test_score_returns_a_fresh_matrix(self, trained):
        ds, rec, _ = trained
        s = rec.score(["u1", "u2"])
        assert s.shape == (2, ds.n_items)
        assert isinstance(s, np.ndarray) and s.dtype == np.float32  # numpy, as every other query
        s.fill(7.0)
        assert not np.array_equal(rec.score(["u1", "u2"]), s)

    def test_recommend_excludes_seen_and_batched_equals_single(self, trained):
        ds, rec, _ = trained
        users = [f"u{u}" for u in range(0, 60, 7)]
        ids, scores = rec.recommend(users, k=5)
        assert ids.shape == (len(users), 5) and scores.shape == (len(users), 5)
        for r, u in enumerate(users):
            one_ids, one_scores = rec.recommend(u, k=5)
            assert one_ids.tolist() == ids[r].tolist()
            # float32 GEMMs of different shapes round differently: a tolerance on the scale of the scores
            np.testing.assert_allclose(one_scores, scores[r], rtol=0, atol=_score_tol(scores))
            assert not {f"i{i}" for i in ds.train.row(int(u[1:]))} & set(one_ids.tolist())
            assert np.all(np.diff(scores[r]) <= 0)

    def test_recommend_honours_candidate_items_and_predict_equals_score(self, trained):
        _, rec, _ = trained
        allowed = [f"i{i}" for i in range(0, 40, 5)]
        ids, _ = rec.recommend("u3", k=3, items=allowed, exclude_seen=False)
        assert set(ids.tolist()) <= set(allowed)
        full = rec.score(["u3"])[0]
        got = rec.predict(["u3", "u3"], ["i1", "i30"])
        np.testing.assert_allclose(got, full[[1, 30]], rtol=0, atol=_score_tol(full))

    def test_recommend_pads_rows_with_fewer_candidates(self, trained):
        ds, rec, _ = trained
        ids, scores = rec.recommend("u3", k=ds.n_items)
        n_seen = len(ds.train.row(3))
        assert np.all(ids[ds.n_items - n_seen:] == None) and np.all(np.isneginf(scores[ds.n_items - n_seen:]))  # noqa: E711

    def test_explain_or_not_supported(self, trained):
        _, rec, _ = trained
        ids, scores = rec.recommend("u4", k=2)
        if not self.explains:
            with pytest.raises(NotSupported):
                rec.explain("u4", ids[0])
            return
        for item, score in zip(ids, scores):
            ex = rec.explain("u4", item, top=3)
            assert ex.base + sum(f.contribution for f in ex.facts) + ex.rest == pytest.approx(ex.score, abs=1e-10)
            assert ex.score == pytest.approx(float(score), rel=1e-4, abs=1e-6)

    def test_fold_in_or_not_supported(self, trained):
        _, rec, _ = trained
        if not self.folds_in:
            with pytest.raises(NotSupported):
                rec.recommend_for_history(["i1", "i5"], k=3)
            return
        ids, scores = rec.recommend_for_history(["i1", "i5", "i9"], k=3)
        assert ids.shape == (3,) and not {"i1", "i5", "i9"} & set(ids.tolist()) and np.isfinite(scores).all()

    def test_similar_or_not_supported(self, trained):
        _, rec, _ = trained
        if not (self.has_vectors or self.has_similarity):
            with pytest.raises(NotSupported):
                rec.similar("i3", k=4)
            return
        ids, cos = rec.similar("i3", k=4)
        assert "i3" not in ids.tolist() and np.all(cos <= 1.0 + 1e-6) and np.all(np.diff(cos) <= 1e-7)
