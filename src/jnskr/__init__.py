"""jnskr: knowledge-graph-enhanced recommendation trained without negative sampling.

Importing it changes nothing in the caller's process (no environment variable, thread pool or
allocator setting): those are the command line's and the service's (`jnskr.threads.cli_process_setup`).
"""

import logging

from jnskr.version import __version__

logging.getLogger("jnskr").addHandler(logging.NullHandler())

_LAZY = {  # public name -> module (keeps `import jnskr` light)
    "Recommender": "jnskr.api",
    "Explanation": "jnskr.api",
    "load_dataset": "jnskr.data",
    "Dataset": "jnskr.data",
    "build_config": "jnskr.config",
    "Config": "jnskr.config",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jnskr' has no attribute {name!r}")


def __dir__():
    """The lazy names too (tab completion, `dir(jnskr)`), without importing them."""
    return sorted({*globals(), *_LAZY})


__all__ = [*_LAZY, "__version__"]
