"""JNSKR-sampled: the JNSKR model trained with negative sampling (BPR for CF, one sampled tail
per fact for the DistMult KG loss) — the paper's central ablation.  Everything but the
objective is JNSKR's (the `jnskr` section); the `sampled` section adds the sampling options."""

from __future__ import annotations

from pydantic import Field

from jnskr.data.config import Strict
from jnskr.models.base import Model, ModelData, register
from jnskr.models.jnskr import JNSKR, JNSKRConfig
from jnskr.training.objectives import JNSKRSampledObjective


class SampledConfig(Strict):
    """JNSKR-sampled: the JNSKR model trained with negative sampling (BPR for CF, one sampled
    tail per fact for the DistMult KG loss); everything else as the `jnskr` section."""

    negatives: int = Field(1, ge=1, le=100)  # sampled negatives per positive


@register
class JNSKRSampled(JNSKR):
    name = "jnskr_sampled"
    section = "sampled"
    Config = SampledConfig
    supports_distributed = False
    has_sweeps = False  # its sampled loss has no closed-form blocks
    uses_confidence = False  # sampled losses: every training pair counts once

    def block_sweeps(self, train, item_kg, batch_size: int, block_solver: str = "cholesky", cg_steps: int = 3):
        return Model.block_sweeps(self, train, item_kg, batch_size, block_solver, cg_steps)

    @classmethod
    def config_sections(cls):
        return {"jnskr": JNSKRConfig, "sampled": SampledConfig}

    @classmethod
    def build(cls, cfg, data: ModelData) -> "JNSKRSampled":
        model = cls(data.n_users, data.n_items, data.item_kg, cfg.jnskr, seed=cfg.seed)
        model.negatives = cfg.sampled.negatives
        return model

    def objective(self, train, item_kg, seed: int):
        return JNSKRSampledObjective(self, train, item_kg, self.cfg, seed, getattr(self, "negatives", 1))
