"""The MF family: ŷ_uv = hᵀ(p_u ∘ q_v) on user and item tables.

* `model`: the tables and scoring (`MF`), ENMF (whole-data loss) and BPR (sampled), registered;
* `objective`: the whole-data CF loss of a batch (`cf_batch_loss`, shared by every whole-data
  model), `CFObjective` (any model with an `encode()`) and `BPRObjective`;
* `problem`: the CF objective as exact blocks (`CFProblem`: users, items, h) and its brute-force twin;
* `sweeps`: `MFSweeps`, the ALS sweeps of `train.solver: als` (implicit's ALS at the iALS point).
"""

from jnskr.models.mf.model import BPR, ENMF, MF, BPRConfig, ENMFConfig

__all__ = ["BPR", "ENMF", "MF", "BPRConfig", "ENMFConfig"]
