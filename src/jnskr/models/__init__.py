"""Models.  Every model exposes `score(users: LongTensor[n]) -> Tensor[n, n_items]`."""

from jnskr.models.enmf import ENMF
from jnskr.models.jnskr import JNSKR
from jnskr.models.popularity import Popularity

__all__ = ["JNSKR", "ENMF", "Popularity"]
