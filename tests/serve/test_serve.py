"""The HTTP service through FastAPI's TestClient (skipped when fastapi is not installed)."""

import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jnskr.api import Recommender
from conftest import fit_runs
from jnskr.errors import JnskrError
from jnskr.serve.engine import Engine

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
with warnings.catch_warnings():  # starlette >= 1.0 prefers httpx2 for its TestClient; httpx works
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient  # noqa: E402

from jnskr.serve.app import create_app, require_fastapi  # noqa: E402

LOCAL = "http://127.0.0.1"  # the service answers loopback Host names (jnskr.serve.security)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return fit_runs(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def engine(runs):
    return Engine(Recommender.load(runs["jnskr"]))


@pytest.fixture(scope="module")
def client(engine):
    with TestClient(create_app(engine), raise_server_exceptions=False, base_url=LOCAL) as c:
        yield c


def test_health_metadata_and_openapi(client, runs):
    assert client.get("/health").json() == {"status": "ok"}
    meta = client.get("/metadata").json()
    assert meta["model"] == "jnskr" and meta["n_users"] == runs["ds"].n_users and meta["explain"] is True
    assert "cosine" in meta["similarity"] and "recall@10" in meta["test_metrics"]
    schema = client.get("/openapi.json").json()
    assert {"/recommend", "/similar", "/health", "/metadata"} <= set(schema["paths"])
    assert {"get", "post"} <= set(schema["paths"]["/recommend"])


def test_get_recommend_matches_the_api(client, runs):
    r = client.get("/recommend", params={"user": "u3", "k": 5})
    assert r.status_code == 200
    body = r.json()
    want_ids, want_scores = Recommender.load(runs["jnskr"]).recommend("u3", k=5)
    assert body["user"] == "u3" and body["k"] == 5
    assert [i["item"] for i in body["items"]] == want_ids.tolist()
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose([i["score"] for i in body["items"]], want_scores, rtol=1e-5)
    assert body["items"][0]["name"].startswith("Item ") and "explanation" not in body["items"][0]
    seen = {f"i{i}" for i in runs["ds"].train.row(3)}
    kept = client.get("/recommend", params={"user": "u3", "k": 40, "keep_seen": True}).json()["items"]
    assert seen <= {i["item"] for i in kept}


def test_explain_parts_sum_to_the_score(client):
    body = client.get("/recommend", params={"user": "u8", "k": 3, "explain": "true", "facts": 2}).json()
    for it in body["items"]:
        e = it["explanation"]
        assert len(e["facts"]) <= 2 and e["n_facts"] >= len(e["facts"])
        assert e["base"] + e["kg"] == pytest.approx(it["score"], rel=1e-5, abs=1e-6)
        assert e["base"] + sum(f["contribution"] for f in e["facts"]) + e["rest"] == pytest.approx(e["score"], abs=1e-9)


def test_unknown_user_404_or_popular_fallback(client, runs):
    r = client.get("/recommend", params={"user": "ghost"})
    assert r.status_code == 404 and r.json() == {"error": "unknown user 'ghost'"}
    r = client.get("/recommend", params={"user": "ghost", "k": 3, "fallback": "popular"})
    assert r.status_code == 200
    body = r.json()
    counts = runs["ds"].train.item_counts()
    assert body["fallback"] == "popular"
    got = [counts[int(i["item"][1:])] for i in body["items"]]
    assert got == sorted(counts.tolist(), reverse=True)[:3]  # the most popular (ties in any order)


@pytest.mark.parametrize(
    "params",
    [{}, {"user": "u1", "k": 0}, {"user": "u1", "k": "abc"}, {"user": "u1", "k": 10**9}, {"user": ""},
     {"user": "u1", "fallback": "bogus"}, {"user": "u1", "explain": "maybe"}, {"user": "u1", "facts": -1}],
)
def test_bad_parameters_are_422_with_a_json_error(client, params):
    r = client.get("/recommend", params=params)
    assert r.status_code == 422 and "error" in r.json()


def test_post_history(client):
    r = client.post("/recommend", json={"history": ["i9", "i13", "i17"], "k": 5})
    assert r.status_code == 200
    items = [i["item"] for i in r.json()["items"]]
    assert len(items) == 5 and not {"i9", "i13", "i17"} & set(items)
    r = client.post("/recommend", json={"history": ["i9"], "k": 2, "explain": True})
    assert r.status_code == 200 and "explanation" in r.json()["items"][0]
    r = client.post("/recommend", json={"history": ["i9", "nope"]})
    assert r.status_code == 404 and "unknown item 'nope'" in r.json()["error"]
    for bad in ({"history": []}, {"k": 3}, {"history": ["i1"], "k": 0}, {"history": ["i1"], "oops": 1},
                {"history": "i1"}, [1, 2]):
        r = client.post("/recommend", json=bad)
        assert r.status_code == 422 and "error" in r.json(), bad
    r = client.post("/recommend", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_similar(client, engine):
    r = client.get("/similar", params={"item": "i6", "k": 4})
    assert r.status_code == 200
    body = r.json()
    idx, _ = engine.similar(engine.item_index("i6"), 4)
    assert [i["item"] for i in body["items"]] == [engine.item_ids[j] for j in idx[0]]
    assert "cosine" in body["similarity"]
    assert client.get("/similar", params={"item": "zzz"}).status_code == 404
    assert client.get("/similar", params={"item": "i6", "k": -2}).status_code == 422


def test_enmf_run_explain_is_422(runs):
    with TestClient(create_app(Engine(Recommender.load(runs["enmf"]))), raise_server_exceptions=False,
                    base_url=LOCAL) as c:
        assert c.get("/recommend", params={"user": "u1"}).status_code == 200
        r = c.get("/recommend", params={"user": "u1", "explain": True})
        assert r.status_code == 422 and "KG" in r.json()["error"]
        assert c.post("/recommend", json={"history": ["i1", "i2"]}).status_code == 200


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=st.text(max_size=30), k=st.one_of(st.integers(-5, 50_000), st.text(max_size=5)),
       explain=st.sampled_from(["true", "false", "1", "x", ""]))
def test_fuzzed_query_strings_never_500(client, user, k, explain):
    r = client.get("/recommend", params={"user": user, "k": k, "explain": explain})
    assert r.status_code in (200, 404, 422), (r.status_code, r.text)
    assert isinstance(r.json(), dict)


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                         lambda c: st.lists(c, max_size=4) | st.dictionaries(
                             st.sampled_from(["history", "k", "explain", "facts", "x"]), c, max_size=4),
                         max_leaves=10))
def test_fuzzed_post_bodies_never_500(client, body):
    r = client.post("/recommend", json=body)
    assert r.status_code in (200, 404, 422), (r.status_code, r.text)


def test_missing_fastapi_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(JnskrError, match=r"pip install 'jnskr\[serve\]'"):
        require_fastapi()


def test_building_the_app_leaves_autograd_on(engine):
    """Regression: create_app once switched autograd off for the whole process, which broke any
    training in the same process afterwards."""
    import torch

    create_app(engine)
    assert torch.is_grad_enabled()


def test_user_vectors_are_computed_once(runs):
    """Regression: every explained request ran the model's encode() (the item vectors of the whole
    catalogue, attention over every KG fact: 0.1-0.3 s on ml-100k) to get one user vector."""
    eng = Engine(Recommender.load(runs["jnskr"]))
    calls = []
    model = eng.cat.model
    orig = model.encode
    model.encode = lambda: calls.append(1) or orig()
    try:
        a = eng.user_vectors([3])
        b = eng.user_vectors([3, 5])
    finally:
        del model.encode
    assert len(calls) <= 1
    assert b.shape == (2, a.shape[1]) and (b[0] == a[0]).all()
    assert (a[0] == orig()[0][3]).all()
