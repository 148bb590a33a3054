"""The browser page of `jnskr serve` (``GET /``) and the endpoints it reads (``/users``,
``/history``); the page itself in headless Chromium (skipped where no Chromium is installed)."""

import re
import shutil
import subprocess
import warnings

import pytest

from jnskr.api import Recommender
from conftest import fit_runs
from jnskr.serve.engine import Engine

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient  # noqa: E402

from jnskr.serve.app import create_app  # noqa: E402
from jnskr.serve.page import page_html  # noqa: E402

LOCAL = "http://127.0.0.1"  # the service answers loopback Host names (jnskr.serve.security)

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return fit_runs(tmp_path_factory.mktemp("page"))


@pytest.fixture(scope="module")
def engines(runs):
    return {m: Engine(Recommender.load(runs[m])) for m in ("jnskr", "enmf")}


@pytest.fixture(scope="module")
def client(engines):
    with TestClient(create_app(engines["jnskr"]), raise_server_exceptions=False, base_url=LOCAL) as c:
        yield c


def test_the_page_is_one_html_file_with_inline_script(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.text == page_html() and "<script>" in r.text and "<style>" in r.text
    assert not re.search(r"<(script|link)[^>]+(src|href)=", r.text)  # nothing loaded from elsewhere
    for endpoint in ("/metadata", "/users?", "/history?", "/recommend?"):
        assert endpoint in r.text


def test_users_by_prefix(client, engines):
    every = sorted(engines["jnskr"].user_ids)
    body = client.get("/users", params={"prefix": "u1", "limit": 5}).json()
    want = [u for u in every if u.startswith("u1")]
    assert body == {"prefix": "u1", "users": want[:5], "more": len(want) > 5}
    assert client.get("/users", params={"limit": 1000}).json()["users"] == every
    assert client.get("/users", params={"prefix": "nobody"}).json() == {"prefix": "nobody", "users": [], "more": False}
    for bad in ({"limit": 0}, {"limit": 1001}, {"prefix": "x" * 1001}):
        r = client.get("/users", params=bad)
        assert r.status_code == 422 and "error" in r.json()


def test_history_lists_the_training_items_with_names(client, runs):
    train = runs["ds"].train
    body = client.get("/history", params={"user": "u7"}).json()
    assert body["user"] == "u7" and body["n_items"] == len(train.row(7))
    assert [i["item"] for i in body["items"]] == [f"i{i}" for i in train.row(7)]
    assert all(i["name"].startswith("Item ") for i in body["items"])
    short = client.get("/history", params={"user": "u7", "limit": 2}).json()
    assert short["n_items"] == body["n_items"] and short["items"] == body["items"][:2]
    r = client.get("/history", params={"user": "ghost"})
    assert r.status_code == 404 and r.json() == {"error": "unknown user 'ghost'"}
    for bad in ({"user": "u7", "limit": 0}, {"user": "u7", "limit": 10_001}, {}):
        assert client.get("/history", params=bad).status_code == 422


# ------------------------------------------------------------------ in a real browser
def browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def dump_dom(url: str, tmp_path) -> str:
    """The page's DOM after its scripts ran (virtual time lets its fetches finish)."""
    exe = browser()
    if exe is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000", "--dump-dom", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_the_page_in_headless_chromium(engines, tmp_path):
    from test_serve_live import live_server

    eng = engines["jnskr"]
    with live_server(eng) as url:
        dom = dump_dom(f"{url}/?user=u4", tmp_path)
    assert 'data-state="ready"' in dom, dom[-3000:]
    idx, _ = eng.recommend_one(eng.user_index("u4"), k=10)
    recs = re.findall(r'<div class="rec">.*?</table>', dom, re.S)
    assert len(recs) == 10
    for rank, (block, i) in enumerate(zip(recs, idx[0].tolist()), 1):
        assert f">#{rank}<" in block and eng.item_ids[i] in block and eng.item_name(i) in block
        assert block.count('<tr class="fact">') >= 1 and "base" in block and "rest" in block
    hist = re.search(r'<ol id="history">(.*?)</ol>', dom, re.S).group(1)
    assert hist.count("<li>") == len(eng.seen_items(eng.user_index("u4")))


def test_the_page_of_a_run_without_kg(engines, tmp_path):
    from test_serve_live import live_server

    with live_server(engines["enmf"]) as url:
        dom = dump_dom(f"{url}/?user=u4", tmp_path)
    assert 'data-state="ready"' in dom
    assert dom.count('<div class="rec">') == 10 and 'class="fact"' not in dom
    assert "no KG" in dom and 'class="error"' not in dom
