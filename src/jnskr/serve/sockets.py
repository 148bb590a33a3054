"""The service's listening socket and connections: what keeps idle or slow clients from locking
out the others (slowloris).

* `bind`: the listening socket, bound before the run is loaded, so a port in use (or a host that
  is not an address of this machine) is a one-line `JnskrError`, not a server that says
  "serving" and then dies;
* `guarded_protocol`: uvicorn's HTTP/1.1 connection (httptools or h11, as uvicorn would pick)
  with two bounds that uvicorn lacks --
  a request (head and body) must arrive within `REQUEST_TIMEOUT_S` of the connection opening or
  of the previous answer, else the connection is closed; and at most `max_connections` are open
  at a time: past it, the connections still waiting for their client (no request yet, or a body
  still arriving) are closed, oldest first, so sockets opened and left idle can fill neither the
  process's file descriptors nor the event loop;
* `uvicorn_config`: uvicorn's settings for the service (that protocol, keep-alive
  `KEEP_ALIVE_S`, no websockets, no access log).
"""

from __future__ import annotations

import errno
import logging
import socket

from jnskr.errors import JnskrError

log = logging.getLogger("jnskr")

REQUEST_TIMEOUT_S = 30.0  # a whole request (head and body) must arrive within this
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this (uvicorn's default)
SHED_TO = 0.9  # past max_connections, waiting connections are closed down to this share of it


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (`host`, `port`), ready for uvicorn (``Server.run(sockets=[...])``)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise JnskrError(f"--host {host}: not an address or a name this machine can resolve ({exc})") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restarts find the port free
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise JnskrError(f"port {port} on {host} is in use (another server?); choose another with --port") from None
        if exc.errno == errno.EACCES:
            raise JnskrError(f"no permission to listen on port {port} of {host} (ports below 1024 need "
                             f"privileges; choose another with --port)") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise JnskrError(f"--host {host}: not an address of this machine") from None
        raise JnskrError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def default_max_connections() -> int:
    """Half the process's file-descriptor limit (the rest is for files and the run), 64..10000."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:  # pragma: no cover
            soft = 20_000
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        soft = 1024
    return max(64, min(10_000, soft // 2))


def _base_protocol(http: str):
    if http == "h11":
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    elif http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    else:  # what uvicorn picks: httptools where installed (uvicorn[standard]), else h11
        from uvicorn.protocols.http.auto import AutoHTTPProtocol as base
    return base


def guarded_protocol(request_timeout: float = REQUEST_TIMEOUT_S, max_connections: int | None = None,
                     http: str = "auto"):
    """uvicorn's HTTP/1.1 connection (`http`: ``auto``, ``h11`` or ``httptools``, as uvicorn's
    option) with a request deadline and a connection cap (module docstring)."""
    base = _base_protocol(http)
    cap = default_max_connections() if max_connections is None else int(max_connections)
    keep = max(1, int(cap * SHED_TO))

    class GuardedProtocol(base):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._opened = self.loop.time()
            self._deadline = None
            self._arm()
            live = [c for c in self.connections if not c.transport.is_closing()]
            if len(live) > cap:
                self._shed(live)

        def _waiting(self) -> bool:
            """Waiting for its client: no request head yet (none, or the last one answered), or a
            request whose body is still arriving."""
            c = self.cycle
            return c is None or c.response_complete or c.more_body

        def _shed(self, live: list) -> None:
            idle = sorted((c for c in live if c is not self and getattr(c, "_waiting", None) and c._waiting()),
                          key=lambda c: c._opened)
            n = len(live) - keep
            for c in idle[:n]:
                c.transport.close()
            log.debug("over %d open connections: closed %d waiting for their client", cap, min(n, len(idle)))

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(request_timeout, self._too_slow)

        def _too_slow(self) -> None:
            self._deadline = None
            if self._waiting() and not self.transport.is_closing():
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request has its own deadline

        def connection_lost(self, exc) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            super().connection_lost(exc)

    GuardedProtocol.__name__ = GuardedProtocol.__qualname__ = f"Guarded{base.__name__}"
    return GuardedProtocol


def uvicorn_config(app, host: str = "127.0.0.1", port: int = 0, request_timeout: float = REQUEST_TIMEOUT_S,
                   max_connections: int | None = None, http: str = "auto", **kw):
    """The `uvicorn.Config` the service runs with (the tests' servers too)."""
    import uvicorn

    settings = dict(log_level="warning", access_log=False, ws="none", timeout_keep_alive=KEEP_ALIVE_S)
    settings.update(kw)
    return uvicorn.Config(app, host=host, port=port, http=guarded_protocol(request_timeout, max_connections, http),
                          **settings)
