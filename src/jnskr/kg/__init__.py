"""Non-sampling knowledge-graph embedding (the JNSKR paper's future work): DistMult, ComplEx and CP
trained on the whole-data square loss over every (head, relation, tail) triple.

    import jnskr.kg
    model = jnskr.kg.train(None, "umls", run_dir="runs/umls")   # preset named like the dataset
    model = jnskr.kg.resume("runs/umls")                          # after Ctrl-C: the same figures
    model = jnskr.kg.load("runs/umls")
    model.score_tails(heads, relations)                          # [B, n_entities]

See docs/kg.md for the objective, its units, and the results.
"""

from jnskr.kg import datasets
from jnskr.kg.config import KGConfig, build_config
from jnskr.kg.data import KGData
from jnskr.kg.datasets import fetch, load_triples
from jnskr.kg.models import MODELS, KGModel
from jnskr.kg.run import load, resume, train

__all__ = ["KGConfig", "KGData", "KGModel", "MODELS", "build_config", "datasets", "fetch", "load", "load_triples",
           "resume", "train"]
