"""What keeps the service's answers bounded whatever a client sends.

* `Limits`: an ASGI middleware that refuses a request body over ``max_body`` bytes (413) --
  by its ``content-length`` before a byte of it is read, or while a chunked body streams in --
  and a query string over ``max_query`` bytes (414), both with the error shape.
* `install_error_handlers`: every 4xx answer is ``{"error": "one line"}`` (validation errors add
  a ``"detail"`` list of at most `MAX_DETAIL` entries); a body that is not JSON (malformed,
  nested too deep for the parser) is a 422; no part of a client's input is echoed back longer
  than `MAX_ECHO` characters.
"""

from __future__ import annotations

import json
import logging

from jnskr.serve.encode import utf8

log = logging.getLogger("jnskr")

MAX_BODY = 1 << 20  # bytes; `body_limit` raises it for catalogues with long item ids
MAX_QUERY = 16 << 10  # bytes of query string
MAX_ECHO = 80  # characters of a client's value quoted back in an error
MAX_LINE = 300  # characters of an error line
MAX_DETAIL = 10  # validation errors listed in "detail"


def clip(value, n: int = MAX_ECHO) -> str:
    """`value` as one line of at most `n` characters (an excerpt ending in '...' when cut)."""
    s = " ".join(str(value).split())
    return s if len(s) <= n else s[: max(0, n - 3)] + "..."


def error_body(status: int, message: str, **extra) -> tuple[dict, int]:
    return {"error": clip(message, MAX_LINE), **extra}, status


def body_limit(max_item_id_chars: int, max_history: int) -> int:
    """A body limit that admits any answerable request: `max_history` known item ids, each as a
    JSON string of up to 6 bytes per character (escapes), with whitespace."""
    return max(MAX_BODY, max_history * (6 * max_item_id_chars + 16) + 4096)


async def send_error(send, status: int, message: str, headers: list | None = None) -> None:
    """Answer an ASGI request with the error shape (`message` is ours, never a client's)."""
    body, _ = error_body(status, message)
    raw = json.dumps(body, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": raw})


class Limits:
    """ASGI middleware: body and query-string size limits (see the module docstring)."""

    def __init__(self, app, max_body: int = MAX_BODY, max_query: int = MAX_QUERY):
        self.app, self.max_body, self.max_query = app, int(max_body), int(max_query)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if len(scope.get("query_string", b"")) > self.max_query:
            return await send_error(send, 414, f"the query string is over {self.max_query} bytes")
        length = None
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    length = int(v)
                except ValueError:
                    return await send_error(send, 400, "invalid content-length header")
        if length is not None and length > self.max_body:
            return await send_error(send, 413, f"the request body is over {self.max_body} bytes")
        if scope.get("method") in ("GET", "HEAD") and not length:
            return await self.app(scope, receive, send)
        # read the body here (bounded), then hand it to the app in one message
        parts, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return await send_error(send, 413, f"the request body is over {self.max_body} bytes")
            parts.append(chunk)
            if not msg.get("more_body", False):
                break
        body = b"".join(parts)
        given = False

        async def replay():
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def _where(loc) -> str:
    return ".".join(clip(x, 40) for x in loc)


def install_error_handlers(app, not_found: tuple, unprocessable: tuple) -> None:
    """The error shape on `app` (FastAPI): exceptions in `not_found` are 404s, in `unprocessable`
    422s, FastAPI's validation errors 422s, Starlette's HTTP errors keep their status (a 400
    for a body the parser gave up on becomes a 422), anything else a logged 500."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.responses import Response

    def reply(status: int, message: str, **extra) -> Response:
        body, status = error_body(status, message, **extra)  # a client's id may hold a lone surrogate
        raw = utf8(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
        return Response(raw, status_code=status, media_type="application/json")

    async def _not_found(request, exc):
        return reply(404, str(exc))

    async def _unprocessable(request, exc):
        return reply(422, str(exc))

    for cls in not_found:
        app.add_exception_handler(cls, _not_found)
    for cls in unprocessable:
        app.add_exception_handler(cls, _unprocessable)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        errs = exc.errors()
        first = errs[0] if errs else {}
        detail = [{"loc": [clip(x, 40) for x in e.get("loc", ())], "msg": clip(e.get("msg", ""), MAX_LINE)}
                  for e in errs[:MAX_DETAIL]]
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        where = _where(first.get("loc", ()))
        return reply(422, f"{where}: {clip(first.get('msg', 'invalid request'), 200)}{more}", detail=detail)

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):
        status = exc.status_code
        if status == 400:  # FastAPI: "There was an error parsing the body" (e.g. nesting too deep)
            return reply(422, "body: not a JSON document this service can read (malformed or nested too deep)")
        if status == 404:
            return reply(404, f"no such endpoint: {clip(request.url.path)}")
        if status == 405:
            return reply(405, f"method {clip(request.method, 10)} not allowed on {clip(request.url.path)}")
        return reply(status, str(exc.detail))

    @app.exception_handler(Exception)
    async def _internal(request, exc: Exception):  # pragma: no cover - a bug, not user input
        log.exception("internal error on %s", request.url.path)
        return reply(500, f"internal error ({type(exc).__name__})")
