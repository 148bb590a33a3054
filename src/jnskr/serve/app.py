"""The HTTP service (FastAPI + uvicorn; ``pip install 'jnskr[serve]'``).

Endpoints (OpenAPI schema at ``/openapi.json``, interactive docs at ``/docs``):

* ``GET /health`` -> ``{"status": "ok"}``
* ``GET /metadata`` -> model, dataset, sizes, what the run supports, its test metrics
* ``GET /recommend?user=U&k=20&explain=false&facts=5&keep_seen=false&fallback=none``
  -> ``{"user", "k", "fallback", "items": [{"rank", "item", "score", "name"?, "explanation"?}]}``;
  an unknown user is a 404 ``{"error": ...}``, or the most popular items with
  ``fallback=popular`` (then ``"fallback": "popular"``)
* ``GET /similar?item=I&k=20`` -> nearest items by cosine similarity of q vectors
* ``POST /recommend`` with ``{"history": [raw item ids], "k": 20, "explain": false}`` -> a new
  user folded in from the history (`jnskr.coldstart`); unknown items are a 404

Errors are JSON ``{"error": "one line"}``: 404 for unknown ids, 422 for bad parameters (FastAPI's
validation, plus ``"detail"``) and for requests the run cannot answer (``explain`` without a
KG).  User input never causes a 500.  The item vectors of the whole catalogue are computed once
at start-up (`Engine`); a query is one matmul and one top-k.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Literal

from jnskr.errors import JnskrError
from jnskr.serve.engine import Engine, UnknownItem, UnknownUser
from jnskr.serve.schemas import MAX_K, Error, History, Recommendations, Similar

log = logging.getLogger("jnskr")
SERVE_HINT = "jnskr serve needs fastapi and uvicorn: pip install 'jnskr[serve]'"


def require_fastapi() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise JnskrError(SERVE_HINT) from None


def create_app(engine: Engine):
    """A FastAPI app answering from `engine`."""
    try:
        from fastapi import Body, FastAPI, Query, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse
    except ImportError:
        raise JnskrError(SERVE_HINT) from None
    from jnskr.version import __version__

    errors = {404: {"model": Error}, 422: {"model": Error}}
    app = FastAPI(title="jnskr", version=__version__,
                  description=f"Recommendations from a {engine.kind} run on {engine.ids.dataset}.")
    app.state.engine = engine

    @app.exception_handler(UnknownUser)
    @app.exception_handler(UnknownItem)
    async def _not_found(request: Request, exc: JnskrError):
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(JnskrError)
    async def _bad(request: Request, exc: JnskrError):
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        detail = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in errs]
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}", "detail": detail},
                            status_code=422)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):  # pragma: no cover - a bug, not user input
        log.exception("internal error on %s", request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, status_code=500)

    def _json(content: dict) -> JSONResponse:
        # the dicts are built to match the response models (documented in the OpenAPI schema);
        # returning a response skips FastAPI's re-validation of them on the hot path
        return JSONResponse(content)

    def _items(top, p=None, explain=False, facts=5, users_p=None) -> list[dict]:
        rows = engine.rows(top)
        if explain and rows:
            n = len(rows)
            exps = engine.explain(p.expand(n, -1), top[0][0][:n], facts)
            for r, e in zip(rows, exps):
                r["explanation"] = e
        return rows

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/metadata")
    async def metadata() -> dict:
        return engine.metadata()

    @app.get("/recommend", response_model=Recommendations, response_model_exclude_none=True, responses=errors)
    async def recommend_user(
        user: str = Query(..., min_length=1, max_length=1000, description="raw user id"),
        k: int = Query(20, ge=1, le=MAX_K),
        explain: bool = Query(False, description="add the KG facts behind each score (JNSKR with a KG)"),
        facts: int = Query(5, ge=1, le=100, description="facts per item with explain"),
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
            top = engine.popular(k)
            return _json({"user": user, "k": k, "fallback": "popular", "items": engine.rows(top)})
        top = engine.recommend_one(u, k=k, exclude_seen=not keep_seen)
        p = engine.user_vectors([u]) if explain else None
        return _json({"user": user, "k": k, "items": _items(top, p, explain, facts)})

    @app.post("/recommend", response_model=Recommendations, response_model_exclude_none=True, responses=errors)
    async def recommend_history(body: History = Body(...)):
        if body.explain:
            engine.fact_table()
        hist = engine.item_indices([str(x) for x in body.history], "history: ")
        p, top = engine.recommend_history(hist, k=body.k, exclude_history=body.exclude_history)
        p = p.unsqueeze(0) if p is not None else None
        return _json({"user": None, "k": body.k, "items": _items(top, p, body.explain, body.facts)})

    @app.get("/similar", response_model=Similar, response_model_exclude_none=True, responses=errors)
    async def similar(
        item: str = Query(..., min_length=1, max_length=1000, description="raw item id"),
        k: int = Query(20, ge=1, le=MAX_K),
    ):
        i = engine.item_index(item)
        top = engine.similar(i, k)
        return _json({"item": item, "k": k, "similarity": "cosine of q vectors", "items": engine.rows(top)})

    return app


def serve_forever(run_dir, host: str = "127.0.0.1", port: int = 8000, new_items=None, device: str | None = None,
                  threads: int = 1, ridge: float | None = None) -> None:
    """Load `run_dir`, build the app and run uvicorn until interrupted."""
    require_fastapi()
    import torch
    import uvicorn

    from jnskr.coldstart import DEFAULT_RIDGE

    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)  # this process only serves
    engine = Engine.load(run_dir, device=device, new_items_path=new_items,
                         ridge=DEFAULT_RIDGE if ridge is None else ridge)
    app = create_app(engine)
    print(f"serving {Path(run_dir)} ({engine.kind}, {engine.n_catalog} items) on http://{host}:{port} "
          f"(OpenAPI docs at /docs)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
