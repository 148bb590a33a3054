"""jnskr: knowledge-graph-enhanced recommendation trained without negative sampling."""

import logging

__version__ = "0.1.0"

logging.getLogger("jnskr").addHandler(logging.NullHandler())


def __getattr__(name):  # lazy public API (keeps `import jnskr` light)
    if name in ("Recommender",):
        from jnskr.api import Recommender

        return Recommender
    if name in ("load_dataset",):
        from jnskr.data import load_dataset

        return load_dataset
    if name in ("build_config", "Config"):
        from jnskr import config

        return getattr(config, name)
    raise AttributeError(name)


__all__ = ["Recommender", "load_dataset", "build_config", "Config", "__version__"]
