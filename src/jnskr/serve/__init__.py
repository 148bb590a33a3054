"""Serving a run: `Engine` (no web dependencies) and the FastAPI app (`jnskr.serve.app`,
needs the ``serve`` extra: fastapi + uvicorn).

The names load lazily, so ``python -m jnskr.serve`` reaches the command line's process settings
(`jnskr.threads.cli_process_setup`) before anything imports torch."""

__all__ = ["Engine", "UnknownItem", "UnknownUser"]


def __getattr__(name):
    if name in __all__:
        from jnskr.serve import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'jnskr.serve' has no attribute {name!r}")
