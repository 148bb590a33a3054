"""The service's bounds: work per request, body size, echoes of client input, the error shape of
every 4xx, heavy requests queued behind one another while light ones pass (FastAPI's TestClient
and httpx's ASGI transport; skipped when fastapi is not installed)."""

import asyncio
import json
import warnings

import pytest

from jnskr.api import Recommender
from conftest import fit_runs
from jnskr.serve import respond
from jnskr.serve.engine import Engine

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
with warnings.catch_warnings():  # starlette >= 1.0 prefers httpx2 for its TestClient; httpx works
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient  # noqa: E402

from jnskr.serve.app import create_app  # noqa: E402
from jnskr.serve.guard import MAX_BODY, Limits, body_limit  # noqa: E402

LOCAL = "http://127.0.0.1"  # the service answers loopback Host names (jnskr.serve.security)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return fit_runs(tmp_path_factory.mktemp("serve-limits"))


@pytest.fixture(scope="module")
def engine(runs):
    return Engine(Recommender.load(runs["jnskr"]))


@pytest.fixture()
def client(engine):
    with TestClient(create_app(engine), raise_server_exceptions=False, base_url=LOCAL) as c:
        yield c


def assert_error_shape(r, status):
    assert r.status_code == status, (r.status_code, r.text[:200])
    body = r.json()
    assert set(body) <= {"error", "detail"} and isinstance(body["error"], str), body
    assert "\n" not in body["error"] and len(body["error"]) <= 300
    assert len(r.content) < 2000, len(r.content)  # never an echo of the whole input


# ------------------------------------------------------------------ bounded work per request
def test_the_largest_legal_request_is_answered_with_bounded_explanations(client, engine, monkeypatch):
    monkeypatch.setattr(respond, "MAX_EXPLAINED", 7)
    r = client.get("/recommend", params={"user": "u2", "k": 10_000, "explain": True, "facts": 100})
    assert r.status_code == 200
    body = r.json()
    n = engine.n_catalog - len(engine.seen_items(engine.user_index("u2")))
    assert body["k"] == 10_000 and body["explained"] == 7 and len(body["items"]) == n
    assert [i["rank"] for i in body["items"]] == list(range(1, n + 1))
    assert all("explanation" in i for i in body["items"][:7])
    assert not any("explanation" in i for i in body["items"][7:])
    for it in body["items"][:7]:
        e = it["explanation"]
        assert e["base"] + sum(f["contribution"] for f in e["facts"]) + e["rest"] == pytest.approx(it["score"], abs=1e-5)
    plain = client.get("/recommend", params={"user": "u2", "k": 3}).json()
    assert "explained" not in plain and [i["item"] for i in plain["items"]] == [i["item"] for i in body["items"][:3]]


def test_sliced_answers_equal_one_piece_answers(client, monkeypatch):
    params = {"user": "u5", "k": 30, "explain": True, "facts": 3}
    whole = client.get("/recommend", params=params).json()
    sim_whole = client.get("/similar", params={"item": "i4", "k": 25}).json()
    hist_whole = client.get("/history", params={"user": "u5"}).json()
    monkeypatch.setattr(respond, "ROWS_PER_SLICE", 4)
    monkeypatch.setattr(respond, "FACTS_PER_SLICE", 5)  # one explained row per slice
    assert client.get("/recommend", params=params).json() == whole
    assert client.get("/similar", params={"item": "i4", "k": 25}).json() == sim_whole
    assert client.get("/history", params={"user": "u5"}).json() == hist_whole


def test_heaviness():
    assert not respond.is_heavy(20, True, 5)
    assert respond.is_heavy(10_000) and respond.is_heavy(100, True, 100)
    assert respond.n_explained(10_000, True) == respond.MAX_EXPLAINED and respond.n_explained(5, False) == 0


# ------------------------------------------------------------------ bodies and echoes
def test_body_limit_is_413_with_the_error_shape(engine):
    with TestClient(create_app(engine, max_body=2000), raise_server_exceptions=False, base_url=LOCAL) as c:
        ok = c.post("/recommend", json={"history": ["i1", "i2"], "k": 3})
        assert ok.status_code == 200
        r = c.post("/recommend", json={"history": ["i1"] * 1000})
        assert_error_shape(r, 413)
        assert "2000 bytes" in r.json()["error"]
    assert body_limit(4, 10_000) == MAX_BODY  # short ids: the default
    assert body_limit(100, 10_000) >= 10_000 * (len(json.dumps("x" * 100)) + 2)


def test_a_chunked_body_over_the_limit_is_413_while_it_streams():
    sent, calls = [], []

    async def app(scope, receive, send):  # pragma: no cover - must not be reached
        calls.append(scope)

    chunks = [{"type": "http.request", "body": b"x" * 400, "more_body": True} for _ in range(100)]

    async def receive():
        return chunks.pop(0)

    async def send(msg):
        sent.append(msg)

    scope = {"type": "http", "method": "POST", "headers": [(b"content-type", b"application/json")]}
    asyncio.run(Limits(app, max_body=1000)(scope, receive, send))
    assert not calls and sent[0]["status"] == 413 and len(chunks) == 97  # stopped after 3 chunks
    assert json.loads(sent[1]["body"])["error"].startswith("the request body is over 1000 bytes")


def test_unknown_ids_and_bad_keys_are_never_echoed_whole(client):
    long_id = "z" * 100_000
    r = client.post("/recommend", json={"history": ["i1", long_id]})
    assert_error_shape(r, 404)
    assert "unknown item 'zzz" in r.json()["error"]
    assert_error_shape(client.get("/recommend", params={"user": "q" * 900}), 404)
    assert_error_shape(client.get("/similar", params={"item": "q" * 900}), 404)
    r = client.post("/recommend", json={"history": ["i1"], "k" * 50_000: 1})
    assert_error_shape(r, 422)
    r = client.post("/recommend", json={"history": [None] * 10_000})  # 10,000 invalid entries (numbers are ids)
    assert_error_shape(r, 422)
    assert len(r.json()["detail"]) <= 10 and "more" in r.json()["error"]


# ------------------------------------------------------------------ the error shape of every 4xx
@pytest.mark.parametrize("body,what", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    (b'{"history": ' * 5_000 + b"1" + b"}" * 5_000, "nested objects"),
    (b"{not json", "malformed"),
    (b"", "empty"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
])
def test_bodies_the_parser_refuses_are_422(client, body, what):
    r = client.post("/recommend", content=body, headers={"content-type": "application/json"})
    assert_error_shape(r, 422)


def test_routes_methods_and_long_query_strings_have_the_error_shape(client):
    r = client.get("/no/such/endpoint")
    assert_error_shape(r, 404)
    assert r.json() == {"error": "no such endpoint: /no/such/endpoint"}
    assert_error_shape(client.put("/recommend"), 405)
    assert_error_shape(client.get("/recommend?user=u1&" + "x=1&" * 5000), 414)
    assert_error_shape(client.get("/recommend", params={"user": "u1", "k": 10_001}), 422)
    assert_error_shape(client.get("/recommend", params={"user": "u1", "facts": 101}), 422)
    assert_error_shape(client.post("/recommend", json={"history": ["i1"] * 10_001}), 422)


# ------------------------------------------------------------------ heavy requests wait their turn
def test_heavy_requests_queue_and_light_ones_pass(engine, monkeypatch):
    monkeypatch.setattr(respond, "ROWS_PER_SLICE", 2)
    monkeypatch.setattr(respond, "FACTS_PER_SLICE", 2)  # every heavy answer takes many slices
    app = create_app(engine, heavy_slots=1)
    lanes = app.state.lanes
    inside, peak, done = [0], [0], []
    orig = respond.items_json

    async def counting(*a, **kw):
        heavy = a[1][0].shape[1] > 2  # (engine, top, ...): more rows than one slice
        inside[0] += heavy
        peak[0] = max(peak[0], inside[0])
        try:
            return await orig(*a, **kw)
        finally:
            inside[0] -= heavy

    monkeypatch.setattr("jnskr.serve.app.items_json", counting)

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as c:
            async def get(tag, params):
                r = await c.get("/recommend", params=params)
                done.append((tag, r.status_code))

            heavy = [get(f"heavy{i}", {"user": f"u{i}", "k": 10_000, "explain": True, "facts": 100}) for i in range(4)]
            light = [get(f"light{i}", {"user": f"u{i}", "k": 2}) for i in range(8)]
            await asyncio.gather(*heavy, *light)

    asyncio.run(main())
    assert sorted(s for _, s in done) == [200] * 12  # queued, never refused
    assert peak[0] == 1 and lanes.waiting == 0  # one heavy answer at a time
    order = [t for t, _ in done]
    assert max(order.index(f"light{i}") for i in range(8)) < order.index("heavy1")  # light ones did not wait


# ------------------------------------------------------------------ the JSON writer
def test_the_row_writer_writes_what_json_dumps_writes(engine):
    from jnskr.serve.encode import RowWriter

    def dumps(x):
        return json.dumps(x, ensure_ascii=False, separators=(",", ":"))

    u = engine.user_index("u9")
    idx, scores = engine.recommend_one(u, k=12)
    p = engine.user_vectors([u])
    w = RowWriter(engine)
    exps = w.explanations(engine.breakdown(p.expand(5, -1), idx[0, :5], 2))
    assert "[" + ",".join(exps) + "]" == dumps(engine.explain(p.expand(5, -1), idx[0, :5], 2))
    want = engine.rows((idx[:, 3:], scores[:, 3:]), start=3)
    assert "[" + ",".join(w.rows(idx[0, 3:], scores[0, 3:], 3)) + "]" == dumps(want)
    rows = engine.rows((idx, scores))
    for r, e in zip(rows, engine.explain(p.expand(5, -1), idx[0, :5], 2)):
        r["explanation"] = e
    assert "[" + ",".join(w.rows(idx[0], scores[0], 0, exps)) + "]" == dumps(rows)


def test_the_row_writer_escapes_any_id_or_name():
    from types import SimpleNamespace

    import numpy as np

    from jnskr.serve.encode import RowWriter

    ids = ['a"b', "c\\d", "é\u2028", "\x00\n", "</script>"]
    names = ["", "x\ty", '"', "名前", None]
    eng = SimpleNamespace(item_ids=ids, item_names=names, n_catalog=5, names=None,
                          item_name=lambda i: names[i] or None)
    w = RowWriter(eng)
    rows = json.loads("[" + ",".join(w.rows(np.array([4, 0, 1, 2, 3, -1]), np.array([1.5, 1, 0.5, 0.25, -0.0, -np.inf],
                                                                                    dtype=np.float32), 7)) + "]")
    assert [r["item"] for r in rows] == [ids[4], *ids[:4]] and [r["rank"] for r in rows] == [8, 9, 10, 11, 12]
    assert [r["name"] for r in rows] == ["", "", "x\ty", '"', "名前"]
    with pytest.raises(ValueError, match="finite"):
        w.rows(np.array([1]), np.array([np.nan], dtype=np.float32))


def test_heavy_answers_rest_only_while_light_requests_arrive(monkeypatch):
    lanes = respond.Lanes()
    slept = []

    async def fake_sleep(x):
        slept.append(x)

    async def main():
        await lanes.pause(0.002)  # no light request yet: full speed
        async with lanes.slot(False):
            pass
        await lanes.pause(0.002)

    monkeypatch.setattr(respond.asyncio, "sleep", fake_sleep)
    asyncio.run(main())
    assert slept == [0, pytest.approx(0.002 * respond.HEAVY_REST)]
