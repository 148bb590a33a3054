"""The service's browser page (``GET /``) and the small JSON endpoints it reads.

* ``GET /`` -> ``page.html`` from this package: one HTML file, inline CSS and JS, no build step;
  it reads ``/metadata``, ``/users``, ``/history`` and ``/recommend?explain=true``.  Its
  Content-Security-Policy (`content_security_policy`) allows that inline script and style by
  their SHA-256 hashes and nothing else: no other script, style, image, frame or form target,
  fetches to this origin only.  With a token (``jnskr serve --token``) open the page as
  ``/#token=TOKEN``: the script sends it as a bearer token (the part after ``#`` never reaches a
  server or a log).
* ``GET /users?prefix=&limit=20`` -> ``{"prefix", "users": [raw ids in string order], "more"}``
  (``limit`` <= 1000)
* ``GET /history?user=U&limit=100`` -> ``{"user", "n_items", "items": [{"item", "name"?}]}``: the
  user's training items (``limit`` <= 10000; ``n_items`` counts all of them)
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

from jnskr.serve.respond import ROWS_PER_SLICE, envelope, list_json
from jnskr.serve.schemas import MAX_K, MAX_USERS, Error, UserHistory, Users

PAGE = "page.html"


def page_html() -> str | None:
    """The page's text, or None when the package was installed without it."""
    try:
        return resources.files("jnskr.serve").joinpath(PAGE).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return None


def _hashes(html: str, tag: str) -> str:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S)
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)


def content_security_policy(html: str) -> str:
    """The page's policy: its own inline ``<script>`` and ``<style>`` blocks (by hash), fetches to
    its own origin, nothing else."""
    none = "'none'"
    return (f"default-src 'none'; script-src {_hashes(html, 'script') or none}; "
            f"style-src {_hashes(html, 'style') or none}; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def add_page(app, engine, lanes) -> None:
    """Add ``/``, ``/users`` and ``/history`` to the FastAPI `app`."""
    from fastapi import Query
    from fastapi.responses import HTMLResponse, Response

    from jnskr.serve.security import SafeJSONResponse as JSONResponse

    errors = {404: {"model": Error}, 422: {"model": Error}}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        html = page_html()
        if html is None:
            return JSONResponse({"error": f"the page is not installed ({PAGE} is missing from jnskr.serve)"},
                                status_code=404)
        return HTMLResponse(html, headers={"content-security-policy": content_security_policy(html)})

    @app.get("/users", response_model=Users, responses=errors)
    async def users(
        prefix: str = Query("", max_length=1000, description="raw user ids starting with this"),
        limit: int = Query(20, ge=1, le=MAX_USERS),
    ):
        found, more = engine.users_with_prefix(prefix, limit)
        return JSONResponse({"prefix": prefix, "users": found, "more": more})

    @app.get("/history", response_model=UserHistory, response_model_exclude_none=True, responses=errors)
    async def history(
        user: str = Query(..., min_length=1, max_length=1000, description="raw user id"),
        limit: int = Query(100, ge=1, le=MAX_K, description="items listed"),
    ):
        u = engine.user_index(user)
        items = engine.seen_items(u)
        shown = items[:limit]
        async with lanes.slot(len(shown) > ROWS_PER_SLICE):
            body = await list_json(lambda lo, hi: engine.writer().items_only(shown[lo:hi]), len(shown), lanes.pause)
        return Response(envelope({"user": user, "n_items": int(len(items))}, "items", body),
                        media_type="application/json")
