"""jnskr's evaluator agrees with RecBole 1.2.1's evaluator on a golden fixture.

The fixture ``tests/data/recbole_golden/recbole_golden.json`` was made by
``bench/peers/recbole/make_golden.py`` with RecBole's own ``Collector`` / ``Evaluator`` and its
``Recall``, ``NDCG``, ``Precision`` and ``Hit`` metrics on a synthetic ties-free case; RecBole is
not needed here.  Three levels are checked, each to 1e-6 at every cutoff:

1. the whole pipeline: ``jnskr.evaluation.evaluate`` with a fixed-score scorer, train items
   excluded, against RecBole's averaged metrics and per-user values;
2. the ranking step: jnskr's ``topk_hits`` against RecBole's ``rec.topk`` hit matrix;
3. the formulas alone: RecBole's ranked hit lists fed to jnskr's ``per_user_metrics``.

Only jnskr's standard ``ndcg`` is compared (RecBole's NDCG is the standard one); the legacy
``ndcg_kgat`` has no RecBole counterpart.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from jnskr.data.dataset import Interactions
from jnskr.evaluation import evaluate, per_user_metrics, topk_hits

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "recbole_golden" / "recbole_golden.json"
FAMILIES = ("recall", "ndcg", "precision", "hit")
TOL = 1e-6


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(FIXTURE.read_text())


class FixedScorer:
    """Scores from a stored [n_users, n_items] matrix (a fresh tensor per call)."""

    device = "cpu"

    def __init__(self, scores: np.ndarray):
        self.scores = torch.as_tensor(scores)

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.scores[users]  # advanced indexing copies


def _interactions(golden: dict, part: str) -> Interactions:
    users = [u for u, d in enumerate(golden["users"]) for _ in d[part]]
    items = [i for d in golden["users"] for i in d[part]]
    return Interactions.from_pairs(np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64),
                                   len(golden["users"]), golden["n_items"])


def _keys(golden: dict) -> list[str]:
    return [f"{f}@{k}" for f in FAMILIES for k in golden["ks"]]


def test_fixture_is_what_it_claims(golden):
    users = golden["users"]
    assert golden["versions"]["recbole"] == "1.2.1"
    for d in users:
        assert len(set(d["scores"])) == golden["n_items"], "scores must be ties-free"
        assert not set(d["train"]) & set(d["test"])
    n_test = [len(d["test"]) for d in users]
    assert 1 in n_test and max(n_test) > max(golden["ks"]) and 0 in n_test
    assert golden["recbole"]["evaluated_users"] == [u for u, n in enumerate(n_test) if n > 0]
    assert set(golden["recbole"]["metrics"]) == set(_keys(golden))
    # user 3 is the spec's worked example (§6): T_u = 3 items, the only hit in the top 40 at rank 3
    pu = golden["recbole"]["per_user"]
    assert pu["recall@10"][3] == pytest.approx(1 / 3)
    assert pu["ndcg@10"][3] == pytest.approx(0.5 / (1 + 1 / np.log2(3) + 0.5), abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch_size", [1, 4, 1024])
def test_evaluate_matches_recbole(golden, dtype, batch_size):
    scores = np.asarray([d["scores"] for d in golden["users"]])
    scorer = FixedScorer(torch.as_tensor(scores, dtype=dtype))
    res = evaluate(scorer, _interactions(golden, "test"), _interactions(golden, "train"), ks=golden["ks"],
                   k_max=golden["k_max"], batch_size=batch_size, return_per_user=True)
    rb = golden["recbole"]
    assert res.n_users == len(rb["evaluated_users"])  # the user without test items is skipped
    assert res.users.tolist() == rb["evaluated_users"]
    for key in _keys(golden):
        assert res.metrics[key] == pytest.approx(rb["metrics"][key], abs=TOL), key
        np.testing.assert_allclose(res.per_user[key], rb["per_user"][key], rtol=0, atol=TOL, err_msg=key)


def test_topk_hits_match_recbole_rec_topk(golden):
    rb = golden["recbole"]
    users = [golden["users"][u] for u in rb["evaluated_users"]]
    n, n_items, k_max = len(users), golden["n_items"], golden["k_max"]
    scores = torch.tensor([d["scores"] for d in users], dtype=torch.float64)
    exclude = torch.zeros(n, n_items, dtype=torch.bool)
    test = torch.zeros(n, n_items, dtype=torch.bool)
    for r, d in enumerate(users):
        exclude[r, d["train"]] = True
        test[r, d["test"]] = True
    hits = topk_hits(scores, exclude, test, k_max=k_max)
    rec_topk = torch.tensor(rb["rec_topk"])  # [n, k_max + 1]: RecBole's hit flags, then |T_u|
    assert torch.equal(hits, rec_topk[:, :k_max].bool())
    assert rec_topk[:, k_max].tolist() == [len(d["test"]) for d in users]


def test_metric_formulas_on_recbole_ranked_lists(golden):
    rb = golden["recbole"]
    k_max = golden["k_max"]
    rec_topk = torch.tensor(rb["rec_topk"])
    values = per_user_metrics(rec_topk[:, :k_max].bool(), rec_topk[:, k_max], golden["ks"])
    for key in _keys(golden):
        np.testing.assert_allclose(values[key].numpy(), rb["per_user"][key], rtol=0, atol=TOL, err_msg=key)
        assert float(values[key].mean()) == pytest.approx(rb["metrics"][key], abs=TOL), key
