"""The JNSKR family: MF whose item vectors add an attention-weighted sum of the item's KG tails,
trained jointly with a DistMult KG loss (docs/spec.md §2-§3).

* `model`: `JNSKR` (parameters, attention, batch forward, scoring), registered;
* `objective`: `JNSKRObjective`, κ·L̃_CF + μ·L̃_KG over an item batch;
* `fused`: the fused attention + KG-positive kernel and its twin;
* `sweeps`: `JNSKRSweeps`, the exact blocks (users, h, item bases) of `train.solver: als`;
* `sampled`: JNSKR-sampled, the paper's negative-sampling ablation, registered.
"""

from jnskr.models.jnskr.model import JNSKR, JNSKRConfig
from jnskr.models.jnskr.sampled import JNSKRSampled, SampledConfig

__all__ = ["JNSKR", "JNSKRConfig", "JNSKRSampled", "SampledConfig"]
