"""JNSKR-sampled: the JNSKR model trained with negative sampling (BPR for CF, one sampled tail
per fact for the DistMult KG loss) — the paper's central ablation.  Everything but the
objective is JNSKR's (the `jnskr` section); the `sampled` section adds the sampling options."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from jnskr.data.config import Strict
from jnskr.models.base import Model, ModelData, register
from jnskr.models.jnskr.model import JNSKR, JNSKRConfig
from jnskr.models.jnskr.objective import JNSKRObjective
from jnskr.models.mf.objective import LOCAL
from jnskr.ops import csr_gather
from jnskr.training.sampling import PositiveLookup, keyed_index, sample_negatives


class JNSKRSampledObjective(JNSKRObjective):
    """The JNSKR model trained with negative sampling (the paper's central ablation): per item
    batch, BPR over its training pairs (u, v) with a sampled negative item v', and a sampled
    DistMult loss −log σ(ĝ(v,r,t) − ĝ(v,r,t')) over its facts with a sampled tail t'.  Same
    model, dropout, batches, optimiser and L2 as `JNSKRObjective`; κ and μ weigh the two."""

    def __init__(self, model, train, item_kg, cfg, seed: int, negatives: int = 1):
        super().__init__(model, train, item_kg, cfg, seed)
        self.negatives = negatives
        self.lookup = PositiveLookup(train, model.device)
        self.n_items = train.n_items
        self.n_tails = item_kg.n_tails if self.has_kg else 0

    def __call__(self, items: Tensor, epoch: int, strategy=LOCAL):
        m = self.model
        seg, pos = csr_gather(self.iu_indptr, items)
        users = self.iu_users[pos]
        q_pos, e_kg = self.item_inputs(items, epoch)
        total = q_pos.new_zeros(())
        parts = {}
        for k in range(self.negatives):
            neg = sample_negatives(self.seed, epoch, pos, users, self.n_items, self.lookup, stream=20 + k)
            uniq, inv = torch.unique(neg, return_inverse=True)
            q_neg, _ = self.item_inputs(uniq, epoch)
            p = m.user_emb[users]
            diff = (p * (q_pos[seg] - q_neg[inv])) @ m.h
            cf = -torch.nn.functional.logsigmoid(diff).sum()
            total = total + self.cfg.kappa * cf
            parts["cf"] = parts.get("cf", 0.0) + cf.detach()
        if self.has_kg and self.cfg.mu:
            kseg, kpos = csr_gather(self.kg_indptr, items)
            rel, tail = self.kg_rel.index_select(0, kpos), self.kg_tail.index_select(0, kpos)
            z = m.rel_emb[rel]
            for k in range(self.negatives):
                t_neg = keyed_index(self.seed, epoch, kpos, self.n_tails, stream=40 + k)
                head = e_kg[kseg] * z
                diff = (head * (m.tails(tail) - m.tails(t_neg))).sum(1)
                kg = -torch.nn.functional.logsigmoid(diff).sum()
                total = total + self.cfg.mu * kg
                parts["kg"] = parts.get("kg", 0.0) + kg.detach()
        return total, parts


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
