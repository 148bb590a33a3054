"""The service as a security boundary (issue 20, class 4; issue 21, item 8), through FastAPI's
TestClient: the Host allow-list (DNS rebinding), the bearer token, nosniff and the
Content-Security-Policy, no CDN-loaded /docs, lone surrogates in names, numbers as ids."""

import base64
import hashlib
import re
import warnings

import numpy as np
import pytest

from jnskr.api import Recommender
from conftest import fit_runs, synthetic_dataset, tiny_config
from jnskr.serve.engine import Engine

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient  # noqa: E402

from jnskr.serve.app import create_app  # noqa: E402

LOCAL = "http://127.0.0.1"
TOKEN = "s3cret-Token_of-40-chars.0123456789abcdefgh"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return fit_runs(tmp_path_factory.mktemp("security"), models=("jnskr",))


@pytest.fixture(scope="module")
def engine(runs):
    return Engine(Recommender.load(runs["jnskr"]))


def client_of(app, base_url=LOCAL):
    return TestClient(app, raise_server_exceptions=False, base_url=base_url)


# ------------------------------------------------------------------ Host allow-list
def test_other_host_names_are_refused(engine):
    """A page on evil.example whose name now resolves to 127.0.0.1 (DNS rebinding) reaches the
    service with ``Host: evil.example``: refused, with the error shape and never a 5xx."""
    with client_of(create_app(engine)) as c:
        for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil.example."):
            for path in ("/recommend?user=u3", "/users", "/", "/history?user=u3", "/nope"):
                r = c.get(path, headers={"host": host})
                assert r.status_code == 400, (host, path, r.status_code)
                assert "Host" in r.json()["error"] and "evil" not in r.json()["error"]
        r = c.post("/recommend", json={"history": ["i1"]}, headers={"host": "evil.example"})
        assert r.status_code == 400
        for host in ("127.0.0.1:8000", "localhost", "LOCALHOST:1", "app.localhost", "[::1]:8000", "10.1.2.3:80",
                     "[2001:db8::1]"):
            assert c.get("/recommend?user=u3", headers={"host": host}).status_code == 200, host


def test_allow_host_adds_names(engine):
    with client_of(create_app(engine, allowed_hosts=["recs.example.org"])) as c:
        for host in ("recs.example.org", "RECS.example.org.:8000"):
            assert c.get("/health", headers={"host": host}).status_code == 200
        assert c.get("/health", headers={"host": "other.example.org"}).status_code == 400
    with client_of(create_app(engine, allowed_hosts=["*"])) as c:
        assert c.get("/health", headers={"host": "anything.example"}).status_code == 200


# ------------------------------------------------------------------ the token
def test_a_token_guards_every_endpoint_but_the_page(engine):
    with client_of(create_app(engine, token=TOKEN)) as c:
        good = {"authorization": f"Bearer {TOKEN}"}
        for path in ("/health", "/metadata", "/recommend?user=u3", "/similar?item=i1", "/users", "/history?user=u3",
                     "/openapi.json", "/nope"):
            for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKEN}"},
                            {"authorization": f"Bearer {TOKEN}x"}, {"authorization": "Bearer"}):
                r = c.get(path, headers=headers)
                assert r.status_code == 401, (path, headers)
                assert r.headers["www-authenticate"].startswith("Bearer") and TOKEN not in r.text
                assert r.json()["error"].startswith("this service needs its token")
            assert c.get(path, headers=good).status_code in (200, 404), path
        assert c.get("/recommend?user=u3", headers={"authorization": f"bearer {TOKEN}"}).status_code == 200
        assert c.post("/recommend", json={"history": ["i1"]}).status_code == 401
        assert c.post("/recommend", json={"history": ["i1"]}, headers=good).status_code == 200
        page = c.get("/")  # the page shell holds no data; its script sends the token from /#token=...
        assert page.status_code == 200 and "location.hash" in page.text and "Bearer" in page.text
        assert c.get("/", headers={"host": "evil.example"}).status_code == 400  # the Host check still holds


def test_a_token_that_cannot_travel_in_a_header_is_refused(engine):
    from jnskr.errors import JnskrError

    for bad in ("", "has space", "tab\there", "caf\u00e9"):
        with pytest.raises(JnskrError, match="token"):
            create_app(engine, token=bad)


# ------------------------------------------------------------------ headers on every answer
def test_every_answer_says_nosniff_and_has_a_policy(engine):
    with client_of(create_app(engine, max_body=2000)) as c:
        answers = [c.get("/health"), c.get("/recommend?user=u3"), c.get("/recommend?user=ghost"),
                   c.get("/recommend?user=u3&k=0"), c.get("/nope"), c.post("/recommend", content=b"x" * 3000),
                   c.get("/health", headers={"host": "evil.example"}), c.get("/openapi.json"), c.get("/")]
        for r in answers:
            assert r.headers["x-content-type-options"] == "nosniff", r.status_code
            assert r.headers["referrer-policy"] == "no-referrer"
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert [r.status_code for r in answers] == [200, 200, 404, 422, 404, 413, 400, 200, 200]
        assert answers[0].headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_page_policy_allows_its_own_inline_script_and_style_only(engine):
    with client_of(create_app(engine)) as c:
        r = c.get("/")
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["connect-src"] == "'self'" and csp["base-uri"] == "'none'"
    scripts = re.findall(r"<script>(.*?)</script>", r.text, re.S)
    styles = re.findall(r"<style>(.*?)</style>", r.text, re.S)
    assert len(scripts) == 1 and len(styles) == 1
    assert csp["script-src"] == _sha256(scripts[0]) and csp["style-src"] == _sha256(styles[0])
    assert "unsafe" not in r.headers["content-security-policy"]
    # what the policy would block: inline handlers, style attributes, script or style loaded from elsewhere
    assert not re.search(r"\son\w+\s*=", r.text) and not re.search(r"<[^>]+\sstyle\s*=", r.text)
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", r.text)
    assert "setAttribute(\"style\"" not in r.text and "innerHTML" not in r.text and "eval(" not in r.text


# ------------------------------------------------------------------ nothing from a CDN
def test_no_docs_pages_that_load_scripts_from_a_cdn(engine):
    with client_of(create_app(engine)) as c:
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            r = c.get(path)
            assert r.status_code == 404 and "cdn" not in r.text.lower()
        schema = c.get("/openapi.json").json()
        assert "/recommend" in schema["paths"]
        page = c.get("/").text
    assert "cdn" not in page.lower() and "https://" not in page


# ------------------------------------------------------------------ lone surrogates
def test_a_lone_surrogate_in_a_name_or_id_is_no_500(runs):
    eng = Engine(Recommender.load(runs["jnskr"]))
    eng.item_names[1] = "bad \ud800 name"
    eng.user_ids[0] = "\udcff-user"
    eng.ids.dataset = "data\ud83d"
    with client_of(create_app(eng)) as c:
        r = c.get("/recommend", params={"user": "u3", "k": eng.n_catalog, "keep_seen": True})
        assert r.status_code == 200
        names = {i["item"]: i["name"] for i in r.json()["items"]}
        assert names["i1"] == "bad \ufffd name"
        r = c.get("/users", params={"limit": 1000})
        assert r.status_code == 200 and "\ufffd-user" in r.json()["users"]
        assert c.get("/metadata").json()["dataset"] == "data\ufffd"
        r = c.get("/history", params={"user": "u3", "limit": 1000})
        assert r.status_code == 200
        r = c.post("/recommend", content=b'{"history": ["i1", "\\ud800"]}', headers={"content-type": "application/json"})
        assert r.status_code == 404 and r.json()["error"] == "history: unknown item '\\ud800'"
        r = c.get("/similar", params={"item": "i2", "k": eng.n_catalog})
        assert r.status_code == 200 and "bad \ufffd name" in r.text


# ------------------------------------------------------------------ numbers as ids
@pytest.fixture(scope="module")
def numeric_run(tmp_path_factory):
    ds = synthetic_dataset()
    ds.item_ids = np.array([str(1000 + i) for i in range(ds.n_items)])
    ds.user_ids = np.array([str(u) for u in range(ds.n_users)])
    out = tmp_path_factory.mktemp("numeric") / "enmf"
    Recommender(tiny_config("enmf", 3)).fit(ds, run_dir=out)
    return out


def test_json_numbers_are_ids_as_in_python(numeric_run):
    rec = Recommender.load(numeric_run)
    want_ids, want_scores = rec.recommend_for_history([1001, 1005], k=5)  # Python reads ints as str(int)
    with client_of(create_app(Engine(rec))) as c:
        for history in ([1001, 1005], ["1001", 1005], [1001, "1005"]):
            r = c.post("/recommend", json={"history": history, "k": 5})
            assert r.status_code == 200, r.text
            assert [i["item"] for i in r.json()["items"]] == list(want_ids)
            np.testing.assert_allclose([i["score"] for i in r.json()["items"]], want_scores, rtol=1e-5)
        r = c.post("/recommend", json={"history": [1001, 7], "k": 5})
        assert r.status_code == 404 and r.json()["error"] == "history: unknown item '7'"
        with pytest.raises(Exception):
            rec.recommend_for_history([1001, 7], k=5)  # the same in Python
        for bad in ([True], [None], [[1001]], [{"id": 1001}]):
            r = c.post("/recommend", json={"history": bad})
            assert r.status_code == 422 and "history" in r.json()["error"], bad
        r = c.post("/recommend", content=b'{"history": [NaN]}', headers={"content-type": "application/json"})
        assert r.status_code == 422
