"""Serving a run: `Engine` (no web dependencies) and the FastAPI app (`jnskr.serve.app`,
needs the ``serve`` extra: fastapi + uvicorn)."""

from jnskr.serve.engine import Engine, UnknownItem, UnknownUser

__all__ = ["Engine", "UnknownItem", "UnknownUser"]
