"""The service's security boundary: who may ask, and what every answer carries.

* `Gate` (an ASGI middleware, the outermost one):
  - the **Host allow-list**: a request whose ``Host`` header names anything but a loopback name
    (``localhost``, ``*.localhost``), an IP address, or a name given in ``allowed_hosts`` is a 400
    ``{"error": ...}``.  A web page on another site can make a browser send requests to a service
    on the user's machine by re-pointing its own DNS name at 127.0.0.1 (DNS rebinding); such
    requests carry that site's name in ``Host``, so they are refused.  ``"*"`` allows any name;
  - the **bearer token**: with a `token`, every request but the page shell (``GET /``, static
    HTML that holds no data) needs ``Authorization: Bearer <token>``, else a 401;
  - **headers on every answer**: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
    no-referrer`` and, unless the answer set its own, ``Content-Security-Policy: default-src
    'none'; frame-ancestors 'none'`` (the page sets a policy that allows its own inline script
    and style by hash, `jnskr.serve.page`).
* `SafeJSONResponse`: JSON whose strings may hold lone surrogates (an item name read as
  ``"\\ud800"``) is sent with each one replaced by U+FFFD instead of failing with a 500.
"""

from __future__ import annotations

import hmac
import ipaddress
import json

from starlette.responses import JSONResponse

from jnskr.errors import JnskrError
from jnskr.serve.encode import utf8
from jnskr.serve.guard import send_error

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
BASE_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
DATA_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
PUBLIC_PATHS = frozenset({"/"})  # the page shell: no data in it, a browser cannot send a token to load it


class SafeJSONResponse(JSONResponse):
    """Compact UTF-8 JSON; lone surrogates become U+FFFD (`jnskr.serve.encode.utf8`)."""

    def render(self, content) -> bytes:
        return utf8(json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")))


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the service on this machine."""
    h = host.strip("[]").lower().rstrip(".")
    if h in LOOPBACK_NAMES or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name part of a ``Host`` header (no port, no brackets, lower case, no final dot)."""
    h = header.strip().lower()
    if h.count(":") > 1 and not h.startswith("["):  # a bare IPv6 address (--host ::1)
        return h
    if h.startswith("["):
        end = h.find("]")
        return h[1:end] if end > 0 else ""
    return h.rsplit(":", 1)[0].rstrip(".") if ":" in h else h.rstrip(".")


def normal_hosts(names) -> frozenset[str]:
    """`names` (``--allow-host`` values) checked and normalised; ``"*"`` stays."""
    out = set()
    for n in names or ():
        s = str(n).strip()
        if s == "*":
            out.add(s)
            continue
        name = host_name(s)
        if not name or any(c.isspace() or c in "/@?#" for c in name):
            raise JnskrError(f"--allow-host {s!r}: not a host name (give a name such as example.org)")
        out.add(name)
    return frozenset(out)


def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    if header is None:  # HTTP/1.0 without Host: no browser sends that
        return True
    if "*" in allowed:
        return True
    name = host_name(header)
    return bool(name) and (name in allowed or is_ip(name) or is_loopback(name))


def check_token(token: str | None) -> str | None:
    """A usable bearer token or None; JnskrError for one that cannot travel in a header."""
    if token is None:
        return None
    if not token or any(not (33 <= ord(c) <= 126) for c in token):
        raise JnskrError("--token / JNSKR_TOKEN: empty, or holds spaces or characters outside printable ASCII")
    return token


class Gate:
    """ASGI middleware: Host allow-list, bearer token, security headers (module docstring)."""

    def __init__(self, app, allowed_hosts=(), token: str | None = None):
        self.app = app
        self.allowed = normal_hosts(allowed_hosts)
        self.token = check_token(token)
        self._expected = f"bearer {self.token}".encode() if self.token else b""

    def _authorised(self, headers: dict[bytes, bytes]) -> bool:
        got = headers.get(b"authorization", b"")
        if got[:7].lower() != b"bearer ":
            return False
        return hmac.compare_digest(b"bearer " + got[7:].strip(), self._expected)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_secured(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [h for h in BASE_HEADERS if h[0] not in names]
                if DATA_CSP[0] not in names:
                    headers.append(DATA_CSP)
                message = {**message, "headers": headers}
            await send(message)

        headers = dict(scope.get("headers", ()))
        host = headers.get(b"host")
        if not host_allowed(None if host is None else host.decode("latin-1"), self.allowed):
            return await send_error(send_secured, 400, "this service does not answer for that Host name "
                                                       "(start it with --allow-host NAME to add one)")
        if self.token and scope.get("path") not in PUBLIC_PATHS and not self._authorised(headers):
            return await send_error(send_secured, 401, "this service needs its token: send the header "
                                                       "'Authorization: Bearer <token>'",
                                    headers=[(b"www-authenticate", b'Bearer realm="jnskr"')])
        return await self.app(scope, receive, send_secured)
