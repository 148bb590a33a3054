"""The service over real sockets: uvicorn on a free 127.0.0.1 port in a thread (skipped without
fastapi/uvicorn).  `live_server` is shared with tests/serve/test_page.py."""

import contextlib
import http.client
import json
import socket
import threading
import time

import pytest

from jnskr.api import Recommender
from conftest import fit_runs
from jnskr.serve.engine import Engine

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from jnskr.serve.app import create_app  # noqa: E402
from jnskr.serve.sockets import REQUEST_TIMEOUT_S, uvicorn_config  # noqa: E402

HOST = "127.0.0.1"


@contextlib.contextmanager
def live_server(engine, request_timeout: float = REQUEST_TIMEOUT_S, max_connections: int | None = None,
                http: str = "auto", **app_kw):
    """Serve `create_app(engine)` on a free loopback port, with the service's uvicorn settings
    (`jnskr.serve.sockets.uvicorn_config`); yields the base URL."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(create_app(engine, **app_kw), HOST, port, request_timeout=request_timeout,
                                           max_connections=max_connections, http=http, lifespan="off"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not t.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        t.join(timeout=10)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    runs = fit_runs(tmp_path_factory.mktemp("serve-live"), models=("jnskr",))
    return Engine(Recommender.load(runs["jnskr"]))


def _conn(url: str) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=30)


def test_chunked_and_oversized_bodies_over_a_socket(engine):
    with live_server(engine, max_body=4000) as url:
        c = _conn(url)
        body = json.dumps({"history": ["i1", "i2"], "k": 2}).encode()
        c.request("POST", "/recommend", body=iter([body[:10], body[10:]]), encode_chunked=True,
                  headers={"content-type": "application/json"})
        r = c.getresponse()
        assert r.status == 200 and len(json.loads(r.read())["items"]) == 2
        c.request("POST", "/recommend", body=iter([b'{"history": ["' + b"x" * 1000] * 10), encode_chunked=True,
                  headers={"content-type": "application/json"})
        r = c.getresponse()
        assert r.status == 413 and json.loads(r.read())["error"] == "the request body is over 4000 bytes"
        c.close()
        c = _conn(url)  # by content-length: refused before the body is read
        c.request("POST", "/recommend", body=b"[" * 50_000, headers={"content-type": "application/json"})
        r = c.getresponse()
        assert r.status == 413 and "error" in json.loads(r.read())
        c.request("GET", "/health")  # the connection is still usable
        assert c.getresponse().status == 200
        c.close()


def test_heavy_clients_do_not_stop_light_ones(engine):
    """One client asks for the largest legal answer back to back while another sends light
    requests: every request is answered 200, none refused."""
    heavy_path = "/recommend?user=u1&k=10000&explain=true&facts=100"
    with live_server(engine) as url:
        stop = time.time() + 3
        codes = {"heavy": [], "light": []}

        def loop(kind, path, n_max):
            c = _conn(url)
            for _ in range(n_max):
                if time.time() > stop:
                    break
                c.request("GET", path)
                r = c.getresponse()
                r.read()
                codes[kind].append(r.status)
            c.close()

        ts = [threading.Thread(target=loop, args=("heavy", heavy_path, 200)),
              threading.Thread(target=loop, args=("light", "/recommend?user=u2&k=5", 2000))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=30)
    assert codes["heavy"] and codes["light"]
    assert set(codes["heavy"]) == {200} and set(codes["light"]) == {200}
