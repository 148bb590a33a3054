"""`jnskr serve` over real sockets and its command line (issue 20, class 4): idle and slow
clients are dropped (slowloris), a port in use and bad options are one `error:` line with exit 2,
binding beyond loopback warns, the token comes from --token or JNSKR_TOKEN.  Every socket has a
timeout and every server a bounded life."""

import os
import select
import socket
import subprocess
import sys
import time
import warnings

import pytest

from jnskr.api import Recommender
from conftest import fit_runs
from jnskr.serve.engine import Engine

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient  # noqa: E402

from jnskr.cli.main import run  # noqa: E402
from test_serve_live import HOST, live_server  # noqa: E402

TOKEN = "0123456789abcdef-token"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return fit_runs(tmp_path_factory.mktemp("sockets"), models=("enmf",))


@pytest.fixture(scope="module")
def engine(runs):
    return Engine(Recommender.load(runs["enmf"]))


def _open(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=5)
    s.settimeout(5)
    return s


def _closed_by_server(s: socket.socket, within: float) -> bool:
    """Whether the server closes `s` within `within` seconds (reads what it may send first)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
        if not r:
            return False
        try:
            if s.recv(65536) == b"":
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def _get(s: socket.socket, path: str = "/health") -> bytes:
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


# ------------------------------------------------------------------ slowloris
@pytest.fixture(params=["h11", "httptools"])
def http(request):
    """Both of uvicorn's HTTP/1.1 implementations (jnskr[serve] brings httptools)."""
    if request.param == "httptools":
        pytest.importorskip("httptools")
    return request.param


def test_idle_and_slow_clients_are_dropped_and_others_served(engine, http):
    with live_server(engine, request_timeout=1.0, http=http) as url:
        idle = _open(url)  # connects, says nothing
        head = _open(url)  # starts a request head and never ends it
        head.sendall(f"GET /health HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        body = _open(url)  # a complete head, then a body that stops arriving
        body.sendall(f"POST /recommend HTTP/1.1\r\nHost: {HOST}\r\ncontent-type: application/json\r\n"
                     f"content-length: 100\r\n\r\n{{\"history\": [".encode())
        drip = _open(url)  # a head that keeps coming, a byte now and then
        drip.sendall(f"GET /health HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        t0, dropped = time.monotonic(), False
        while time.monotonic() - t0 < 4 and not dropped:
            try:
                drip.sendall(b"X")
            except OSError:
                dropped = True
                break
            dropped = _closed_by_server(drip, 0.2)
        assert dropped, "a dripping request head was never cut off"
        for s in (idle, head, body):
            assert _closed_by_server(s, 3.0)
            s.close()
        drip.close()
        ok = _open(url)  # the server still answers, and a keep-alive client that keeps asking stays
        for _ in range(4):
            assert _get(ok).startswith(b"HTTP/1.1 200")
            time.sleep(0.4)
        ok.close()


def test_past_the_connection_cap_waiting_sockets_are_closed_oldest_first(engine, http):
    with live_server(engine, request_timeout=30.0, max_connections=8, http=http) as url:
        idle = [_open(url) for _ in range(30)]
        t0 = time.monotonic()
        s = _open(url)
        assert _get(s).startswith(b"HTTP/1.1 200") and time.monotonic() - t0 < 3
        s.close()
        closed = [_closed_by_server(c, 0.5) for c in idle]
        assert sum(closed) >= 30 - 8 and closed[0] and not closed[-1], closed
        for c in idle:
            c.close()


# ------------------------------------------------------------------ the command line
def _jnskr(*args, env=None, timeout=90):
    return subprocess.run([sys.executable, "-m", "jnskr", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _one_error_line(out) -> str:
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr and "serving" not in out.stderr + out.stdout
    return lines[0]


def test_a_port_in_use_is_one_error_line(runs):
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _one_error_line(_jnskr("serve", str(runs["enmf"]), "--port", str(port)))
    assert f"port {port}" in line and "in use" in line


@pytest.mark.parametrize("args,word", [
    (["--threads", "5000"], "--threads"),
    (["--threads", "0"], "--threads"),
    (["--token", "has space"], "token"),
    (["--allow-host", "a/b"], "--allow-host"),
    (["--host", "no-such-host.invalid"], "--host"),
])
def test_bad_options_are_one_error_line(runs, args, word):
    line = _one_error_line(_jnskr("serve", str(runs["enmf"]), "--port", "0", *args))
    assert word in line


@pytest.fixture
def started(monkeypatch):
    """`jnskr serve` in this process up to uvicorn, whose `Server.run` only records the call."""
    seen = {}

    def fake_run(self, sockets=None):
        seen.update(config=self.config, sockets=sockets)

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    return seen


def _client(app):
    return TestClient(app, raise_server_exceptions=False, base_url=f"http://{HOST}")


def test_beyond_loopback_warns_and_the_token_comes_from_the_environment(runs, started, monkeypatch, capsys):
    monkeypatch.setenv("JNSKR_TOKEN", TOKEN)
    assert run(["serve", str(runs["enmf"]), "--host", "0.0.0.0", "--port", "0", "--allow-host", "recs.lan"]) == 0
    err = capsys.readouterr().err
    warning, serving = [ln for ln in err.splitlines() if ln.strip()]  # the CLI's handler: "LEVEL message"
    assert warning.startswith("WARNING") and "beyond this machine" in warning and "requests need the token" in warning
    assert serving.startswith("serving") and "#token=TOKEN" in serving and TOKEN not in err
    config, (sock,) = started["config"], started["sockets"]
    assert sock.fileno() == -1  # closed once uvicorn returned
    with _client(config.app) as c:
        assert c.get("/health").status_code == 401
        assert c.get("/health", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get("/health", headers={"authorization": f"Bearer {TOKEN}", "host": "recs.lan:8000"}).status_code == 200
        assert c.get("/health", headers={"authorization": f"Bearer {TOKEN}", "host": "evil.example"}).status_code == 400
    assert config.timeout_keep_alive <= 5 and config.ws == "none" and not isinstance(config.http, str)


def test_beyond_loopback_without_a_token_says_so(runs, started, monkeypatch, capsys):
    monkeypatch.delenv("JNSKR_TOKEN", raising=False)
    assert run(["serve", str(runs["enmf"]), "--host", "0.0.0.0", "--port", "0"]) == 0
    warning = capsys.readouterr().err.splitlines()[0]
    assert warning.startswith("WARNING") and "no token is set" in warning and "JNSKR_TOKEN" in warning


def test_loopback_without_a_token_does_not_warn(runs, started, monkeypatch, capsys):
    monkeypatch.delenv("JNSKR_TOKEN", raising=False)
    assert run(["serve", str(runs["enmf"]), "--port", "0"]) == 0
    err = capsys.readouterr().err
    assert "WARNING" not in err and err.startswith("serving")
    with _client(started["config"].app) as c:
        assert c.get("/health").status_code == 200


def test_serving_in_process_leaves_grad_mode_and_threads_as_they_were(runs, started, monkeypatch):
    """`serve` turned autograd off for the whole process and never back: every later test in the
    same process that trained failed ('element 0 of tensors does not require grad')."""
    import torch

    from jnskr.cli.main import run

    threads = torch.get_num_threads()
    assert run(["serve", str(runs["enmf"]), "--port", "0", "--threads", "1"]) == 0
    assert torch.is_grad_enabled() and torch.get_num_threads() == threads
