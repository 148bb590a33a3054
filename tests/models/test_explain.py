"""Explanations: JNSKR's score decomposes exactly into a base part and one part per KG fact.

ŷ_uv = hᵀ(p_u ∘ e_v) + Σ_(r,t) α_v(r,t)·hᵀ(p_u ∘ x_t).  The identity is checked in float64
against an independent float64 copy of the model (its own attention and `item_vectors`).
"""

import copy
import json

import numpy as np
import pytest
import torch

from jnskr.api import Recommender
from jnskr.cli.main import run
from jnskr.config import build_config
from jnskr.errors import JnskrError
from jnskr.explain import Explanation, Names
from jnskr.models.jnskr.explain import FactTable
from jnskr.ids import IdMaps
from jnskr.models import NotSupported
from jnskr.ops import csr_gather
from jnskr.serve.engine import Engine


def _cfg(model="jnskr", epochs=10, **sets):
    over = [f"model={model}", "device=cpu", f"train.epochs={epochs}", "train.batch_size=16", "eval.ks=[5,10]",
            "jnskr.embed_dim=16", "enmf.embed_dim=16", "jnskr.c0=20", "jnskr.c1=20"]
    return build_config("default", overrides=over + [f"{k}={v}" for k, v in sets.items()])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from conftest import synthetic_dataset

    root = tmp_path_factory.mktemp("explain")
    ds = synthetic_dataset()
    Recommender(_cfg(epochs=5)).fit(ds, run_dir=root / "jnskr")
    Recommender(_cfg("enmf", epochs=5)).fit(ds, run_dir=root / "enmf")
    return {"ds": ds, "jnskr": root / "jnskr", "enmf": root / "enmf"}


def test_base_plus_all_contributions_equals_the_score_in_float64(runs):
    rec = Recommender.load(runs["jnskr"])
    n_items = runs["ds"].n_items
    users = torch.tensor([0, 7, 33]).repeat_interleave(n_items)
    items = torch.arange(n_items).repeat(3)
    ft = FactTable(rec.model)
    ex = ft.explain(rec.model.users(users), items, top=None)
    m64 = copy.deepcopy(rec.model).double().eval()  # independent path: the model's own attention
    with torch.no_grad():
        want = ((m64.users(users) * m64.h) * m64.item_vectors(items)).sum(1).numpy()
    assert ex.base.dtype == np.float64 and ex.contribution.dtype == np.float64
    total = ex.base + np.bincount(ex.fact_row, weights=ex.contribution, minlength=len(items))
    np.testing.assert_allclose(total, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ex.score, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ex.base + ex.kg, want, rtol=0, atol=1e-12)
    # every fact listed once; attention sums to 1 per item; float32 scoring agrees
    deg = np.diff(rec.model.nb_indptr.numpy())
    assert np.array_equal(ex.n_facts, deg[items.numpy()])
    assert np.array_equal(np.bincount(ex.fact_row, minlength=len(items)), ex.n_facts)
    np.testing.assert_allclose(np.bincount(ex.fact_row, weights=ex.alpha, minlength=len(items)), 1.0, atol=1e-12)
    np.testing.assert_allclose(ex.score, rec.score(torch.tensor([0, 7, 33])).ravel(), rtol=1e-4, atol=1e-6)


def test_top_facts_are_sorted_and_the_rest_is_accounted_for(runs):
    rec = Recommender.load(runs["jnskr"])
    ft = FactTable(rec.model)
    items = torch.arange(12)
    ex = ft.explain(rec.model.users(torch.full((12,), 3)), items, top=2)
    assert np.all(np.bincount(ex.fact_row, minlength=12) == np.minimum(2, ex.n_facts))
    for i in range(12):
        c = ex.contribution[ex.row_facts(i)]
        assert np.all(np.abs(c[:-1]) >= np.abs(c[1:]))
        assert ex.base[i] + c.sum() + ex.rest[i] == pytest.approx(ex.score[i], abs=1e-12)


def test_attention_matches_the_model(runs):
    rec = Recommender.load(runs["jnskr"])
    m = rec.model
    items = torch.arange(runs["ds"].n_items)
    seg, pos = csr_gather(m.nb_indptr, items)
    rel, tail = m.nb_rel[pos], m.nb_tail[pos]
    alpha = m.attention_weights(seg, m.tails(tail), m.rel_emb[rel], len(items))
    ft = FactTable(m)
    np.testing.assert_allclose(ft.alpha.numpy(), alpha.detach().double().numpy(), atol=1e-6)
    s = m.fact_logits(rel, tail)
    assert s.dtype == torch.float64 and s.shape == alpha.shape


def test_names_use_item_titles_for_item_tails_and_ids_otherwise():
    ids = IdMaps("d", 1, 2, relation_names=["film.genre", "film.actor"], tail_entity_ids=["m.a", "m.b", "m.c"],
                 item_names=["Toy Story", "Heat"])
    names = Names(ids, np.array([1, 5, 6]))
    assert names.relation(1) == "film.actor" and names.relation(7) == "r7"
    assert [names.entity(t) for t in range(3)] == ["m.a", "m.b", "m.c"]
    assert [names.entity_name(t) for t in range(3)] == ["Heat", None, None]
    assert names.any_named
    ids.item_names = None
    assert not Names(ids, np.array([1, 5, 6])).any_named


def test_cli_explain_prints_facts_and_says_entities_are_ids(runs, capsys):
    assert run(["recommend", str(runs["jnskr"]), "--user", "u3", "--k", "3", "--explain", "--facts", "2"]) == 0
    out = capsys.readouterr().out
    assert "score = base + kg exactly" in out
    assert "#1 " in out and "a=" in out and "more facts" in out
    assert "r0" in out or "r1" in out  # relation names (synthetic data: r<k>)
    assert "entities are shown by their raw ids" in out


def test_cli_explain_says_so_when_only_some_entities_have_names(runs, capsys, monkeypatch):
    """Issue 21 item 12: ml-100k names 96 of its 33,126 tails (movies), and the note was printed only
    when no entity had a name, so the README's "(the output says so)" was not true there."""
    from jnskr import explain

    orig = explain.Names.__init__

    def some_named(self, *a, **k):
        orig(self, *a, **k)
        self.any_named = True

    monkeypatch.setattr(explain.Names, "__init__", some_named)
    assert run(["recommend", str(runs["jnskr"]), "--user", "u3", "--k", "2", "--explain", "--facts", "2"]) == 0
    assert "entities without a name in the dataset are shown by their raw ids" in capsys.readouterr().out


def test_cli_explain_all_users_to_jsonl_sums_exactly(runs, tmp_path):
    out = tmp_path / "recs.jsonl"
    assert run(["recommend", str(runs["jnskr"]), "--all", "--k", "4", "--explain", "--facts", "3",
                "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == runs["ds"].n_users * 4
    for r in rows:
        assert set(r) == {"user", "item", "rank", "score", "item_name", "base", "kg", "facts"}
        assert r["base"] + r["kg"] == pytest.approx(r["score"], rel=1e-5, abs=1e-6)
        assert 1 <= len(r["facts"]) <= 3
        assert set(r["facts"][0]) == {"relation", "entity", "entity_name", "alpha", "contribution"}


def test_explain_without_a_kg_is_a_clear_error(runs, capsys):
    assert run(["recommend", str(runs["enmf"]), "--user", "u3", "--explain"]) == 2
    err = capsys.readouterr().err
    assert "KG facts" in err and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.startswith("error:")]) == 1
    with pytest.raises(JnskrError, match="KG"):
        Engine(Recommender.load(runs["enmf"])).fact_table()
    with pytest.raises(NotSupported, match="KG facts"):
        Recommender.load(runs["enmf"]).explain("u3", "i1")


def test_engine_explain_rows_for_a_user(runs):
    eng = Engine(Recommender.load(runs["jnskr"]))
    idx, scores = eng.recommend_users([5], k=3)
    rows = eng.explain(eng.user_vectors([5]).expand(3, -1), idx[0], top=4)
    for e, s in zip(rows, scores[0]):
        assert e["score"] == pytest.approx(float(s), rel=1e-5)
        shown = sum(f["contribution"] for f in e["facts"])
        assert e["base"] + shown + e["rest"] == pytest.approx(e["score"], abs=1e-12)


def test_public_explain_returns_one_exact_object(runs):
    rec = Recommender.load(runs["jnskr"])
    ids, scores = rec.recommend("u5", k=3)
    for item, score in zip(ids, scores):
        ex = rec.explain("u5", item, top=2)
        assert isinstance(ex, Explanation) and ex.user == "u5" and ex.item == item
        assert len(ex.facts) == min(2, ex.n_facts)
        assert ex.base + sum(f.contribution for f in ex.facts) + ex.rest == pytest.approx(ex.score, abs=1e-12)
        assert ex.score == pytest.approx(float(score), rel=1e-5)
        assert {f.relation for f in ex.facts} <= set(rec.ids.relation_names)
        assert all(0.0 <= f.attention <= 1.0 for f in ex.facts)
    full = rec.explain("u5", ids[0], top=1000)
    assert full.rest == 0.0 and len(full.facts) == full.n_facts
