"""jnskr: knowledge-graph-enhanced recommendation trained without negative sampling."""

import logging
import sys

from jnskr.version import __version__

if "torch" not in sys.modules:  # before torch starts its OpenMP pool (see jnskr.threads)
    from jnskr.threads import passive_waiting

    passive_waiting()
if "numpy" not in sys.modules:  # before numpy loads OpenBLAS
    from jnskr.threads import quiet_blas

    quiet_blas()

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
