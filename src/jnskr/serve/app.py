"""The HTTP service (FastAPI + uvicorn; ``pip install 'jnskr[serve]'``).

Endpoints (OpenAPI schema at ``/openapi.json``; no ``/docs`` or ``/redoc``: FastAPI builds those
from scripts on a CDN, and this service loads nothing from elsewhere):

* ``GET /health`` -> ``{"status": "ok"}``
* ``GET /metadata`` -> model, dataset, sizes, what the run supports, its test metrics, the limits
* ``GET /recommend?user=U&k=20&explain=false&facts=5&keep_seen=false&fallback=none``
  -> ``{"user", "k", "fallback"?, "explained"?, "items": [{"rank", "item", "score", "name"?,
  "explanation"?}]}``; with ``explain`` the first ``explained`` (at most 100) items carry their
  KG facts.  An unknown user is a 404 ``{"error": ...}``, or the most popular items with
  ``fallback=popular`` (then ``"fallback": "popular"``)
* ``GET /similar?item=I&k=20`` -> nearest items by cosine similarity of q vectors
* ``POST /recommend`` with ``{"history": [raw item ids], "k": 20, "explain": false}`` -> a new
  user folded in from the history (`jnskr.coldstart`); unknown items are a 404.  Ids may be JSON
  strings or numbers; a number stands for the id Python's ``str()`` writes (``289`` -> ``"289"``,
  as `jnskr.api.Recommender` reads ``289``)
* ``GET /`` (a page), ``GET /users?prefix=``, ``GET /history?user=`` (`jnskr.serve.page`)

Every 4xx is JSON ``{"error": "one line"}`` (`jnskr.serve.guard`): 404 for unknown ids and
routes, 413 for a body over the limit, 414 for a query string over 16 KB, 422 for bad
parameters or a body that is not readable JSON (FastAPI's validation adds ``"detail"``, at most
10 entries) and for requests the run cannot answer (``explain`` without a KG).  No client input
is echoed back longer than 80 characters; user input never causes a 500.  The item vectors of
the whole catalogue are computed once at start-up (`Engine`); a query is one matmul and one
top-k, and large answers are built in slices that let other requests through
(`jnskr.serve.respond`).

Who may ask (`jnskr.serve.security`): requests naming a Host other than a loopback name, an IP
address or an ``--allow-host`` name are a 400; with a token every request but the page needs
``Authorization: Bearer <token>`` (else 401); every answer carries ``nosniff`` and a
Content-Security-Policy.  Idle and slow connections are closed (`jnskr.serve.sockets`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Literal

from jnskr.errors import JnskrError
from jnskr.serve.engine import Engine, UnknownItem, UnknownUser
from jnskr.serve.guard import Limits, body_limit, install_error_handlers
from jnskr.serve.respond import MAX_EXPLAINED, Lanes, envelope, is_heavy, items_json
from jnskr.serve.schemas import MAX_FACTS, MAX_HISTORY, MAX_K, Error, History, Recommendations, Similar

log = logging.getLogger("jnskr")
MAX_THREADS = 1024  # as every command's --threads
SERVE_HINT = "jnskr serve needs fastapi and uvicorn: pip install 'jnskr[serve]'"


def require_fastapi() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise JnskrError(SERVE_HINT) from None


def create_app(engine: Engine, max_body: int | None = None, heavy_slots: int = 1, allowed_hosts=(),
               token: str | None = None):
    """A FastAPI app answering from `engine`.  `max_body`: request body limit in bytes (default:
    `guard.body_limit` of the catalogue); `heavy_slots`: heavy requests computed at a time;
    `allowed_hosts`: Host names answered besides loopback names and IP addresses (``"*"``: any);
    `token`: the bearer token every request but the page must carry (`jnskr.serve.security`)."""
    try:
        from fastapi import Body, FastAPI, Query
        from fastapi.responses import Response
    except ImportError:
        raise JnskrError(SERVE_HINT) from None
    from jnskr.serve.page import add_page
    from jnskr.serve.security import Gate, SafeJSONResponse, check_token, normal_hosts
    from jnskr.version import __version__

    token, allowed_hosts = check_token(token), normal_hosts(allowed_hosts)  # errors now, not at the first request

    errors = {404: {"model": Error}, 413: {"model": Error}, 422: {"model": Error}}
    app = FastAPI(title="jnskr", version=__version__, docs_url=None, redoc_url=None,
                  default_response_class=SafeJSONResponse,
                  description=f"Recommendations from a {engine.kind} run on {engine.ids.dataset}.")
    if max_body is None:
        max_body = body_limit(max((len(i) for i in engine.item_ids), default=1), MAX_HISTORY)
    lanes = Lanes(heavy_slots)
    app.state.engine, app.state.lanes, app.state.max_body = engine, lanes, int(max_body)
    install_error_handlers(app, not_found=(UnknownUser, UnknownItem), unprocessable=(JnskrError,))
    app.add_middleware(Limits, max_body=max_body)
    app.add_middleware(Gate, allowed_hosts=allowed_hosts, token=token)  # added last: the outermost

    async def answer(head: dict, top, p=None, explain: bool = False, facts: int = 5) -> Response:
        # the bytes are built to match the response models (documented in the OpenAPI schema),
        # slice by slice (`jnskr.serve.respond`), without FastAPI's re-validation
        items, n_exp = await items_json(engine, top, p, explain, facts, lanes.pause)
        if explain:
            head["explained"] = n_exp
        return Response(envelope(head, "items", items), media_type="application/json")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/metadata")
    async def metadata() -> dict:
        return {**engine.metadata(), "limits": {
            "max_k": MAX_K, "max_facts": MAX_FACTS, "max_history": MAX_HISTORY, "max_explained": MAX_EXPLAINED,
            "max_body_bytes": app.state.max_body, "heavy_at_a_time": lanes.heavy_slots}}

    @app.get("/recommend", response_model=Recommendations, response_model_exclude_none=True, responses=errors)
    async def recommend_user(
        user: str = Query(..., min_length=1, max_length=1000, description="raw user id"),
        k: int = Query(20, ge=1, le=MAX_K),
        explain: bool = Query(False, description=f"add the KG facts behind the scores of the first "
                                                 f"{MAX_EXPLAINED} items (JNSKR with a KG)"),
        facts: int = Query(5, ge=1, le=MAX_FACTS, description="facts per item with explain"),
        keep_seen: bool = Query(False, description="do not exclude the user's training items"),
        fallback: Literal["none", "popular"] = Query("none", description="popular: unknown users get popular items"),
    ):
        if explain:
            engine.fact_table()
        try:
            u = engine.user_index(user)
        except UnknownUser:
            if fallback != "popular":
                raise
            async with lanes.slot(is_heavy(min(k, engine.n_catalog))):
                return await answer({"user": user, "k": k, "fallback": "popular"}, engine.popular(k))
        async with lanes.slot(is_heavy(min(k, engine.n_catalog), explain, facts)):
            top = engine.recommend_one(u, k=k, exclude_seen=not keep_seen)
            p = engine.user_vectors([u]) if explain else None
            return await answer({"user": user, "k": k}, top, p, explain, facts)

    @app.post("/recommend", response_model=Recommendations, response_model_exclude_none=True, responses=errors)
    async def recommend_history(body: History = Body(...)):
        if body.explain:
            engine.fact_table()
        heavy = len(body.history) > 1000 or is_heavy(min(body.k, engine.n_catalog), body.explain, body.facts)
        async with lanes.slot(heavy):
            hist = engine.item_indices([str(x) for x in body.history], "history: ")
            p, top = engine.recommend_history(hist, k=body.k, exclude_history=body.exclude_history)
            p = p.unsqueeze(0) if p is not None else None
            return await answer({"user": None, "k": body.k}, top, p, body.explain, body.facts)

    @app.get("/similar", response_model=Similar, response_model_exclude_none=True, responses=errors)
    async def similar(
        item: str = Query(..., min_length=1, max_length=1000, description="raw item id"),
        k: int = Query(20, ge=1, le=MAX_K),
    ):
        i = engine.item_index(item)
        async with lanes.slot(is_heavy(min(k, engine.n_catalog))):
            return await answer({"item": item, "k": k, "similarity": "cosine of q vectors"}, engine.similar(i, k))

    add_page(app, engine, lanes)
    return app


def serve_forever(run_dir, host: str = "127.0.0.1", port: int = 8000, new_items=None, device: str | None = None,
                  threads: int = 1, ridge: float | None = None, allowed_hosts=(), token: str | None = None,
                  checkpoint: str = "final") -> None:
    """Bind (`host`, `port`), load `run_dir`, build the app and run uvicorn until interrupted."""
    from jnskr.serve.security import check_token, is_loopback, normal_hosts
    from jnskr.serve.sockets import bind, uvicorn_config

    require_fastapi()
    if not 1 <= int(threads) <= MAX_THREADS:
        raise JnskrError(f"--threads {threads}: give 1 to {MAX_THREADS}")
    token, hosts = check_token(token), normal_hosts(allowed_hosts)
    sock = bind(host, port)  # a port in use is an error line before anything is loaded
    import torch

    old_threads, old_grad = torch.get_num_threads(), torch.is_grad_enabled()
    try:
        import uvicorn

        from jnskr.coldstart import DEFAULT_RIDGE

        torch.set_num_threads(threads)
        torch.set_grad_enabled(False)  # while serving (restored when the server stops: a caller in-process)
        engine = Engine.load(run_dir, device=device, new_items_path=new_items,
                             ridge=DEFAULT_RIDGE if ridge is None else ridge, checkpoint=checkpoint)
        app = create_app(engine, allowed_hosts=hosts | {host.strip("[]").lower().rstrip(".")}, token=token)
        port = sock.getsockname()[1]
        if not is_loopback(host):
            log.warning("serving on %s:%d reaches beyond this machine: whoever can connect reads every user's "
                        "history and recommendations%s", host, port,
                        "; requests need the token, sent in clear over plain HTTP (put TLS in front)" if token else
                        "; no token is set (--token or JNSKR_TOKEN makes every request carry one)")
        where = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
        print(f"serving {Path(run_dir)} ({engine.kind}, {engine.n_catalog} items) on {where} "
              f"(a page at /{'#token=TOKEN' if token else ''}, the OpenAPI schema at /openapi.json)",
              file=sys.stderr, flush=True)
        uvicorn.Server(uvicorn_config(app, host, port)).run(sockets=[sock])
    finally:
        sock.close()
        torch.set_num_threads(old_threads)
        torch.set_grad_enabled(old_grad)

