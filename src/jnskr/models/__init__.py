"""Models, one class each, registered by name (`jnskr.models.base`).  Importing this package
registers every built-in model; `get(name)` returns its class."""

from jnskr.models import itemknn as _itemknn  # noqa: F401  (registration)
from jnskr.models import jnskr as _jnskr  # noqa: F401  (registration)
from jnskr.models import lightgcn as _lightgcn  # noqa: F401
from jnskr.models import mf as _mf  # noqa: F401
from jnskr.models import popularity as _popularity  # noqa: F401
from jnskr.models.base import MODELS, Model, ModelData, NotSupported, get, register, sections
from jnskr.models.jnskr import JNSKR
from jnskr.models.mf import BPR, ENMF
from jnskr.models.popularity import Popularity

__all__ = ["MODELS", "Model", "ModelData", "NotSupported", "get", "register", "sections", "JNSKR", "ENMF", "BPR",
           "Popularity"]
