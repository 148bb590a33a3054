"""Every registered model against the `ModelContract` (tests/contract.py)."""

from contract import ModelContract
from jnskr.models import MODELS


class TestJNSKR(ModelContract):
    model_name = "jnskr"
    explains = True


class TestJNSKRSampled(ModelContract):
    model_name = "jnskr_sampled"
    explains = True
    min_recall_gain = 0.05


class TestENMF(ModelContract):
    model_name = "enmf"


class TestBPR(ModelContract):
    model_name = "bpr"
    folds_in = False
    epochs = 30
    min_recall_gain = 0.0


class TestPopularity(ModelContract):
    model_name = "popularity"
    trainable = False
    folds_in = False
    has_vectors = False


def test_every_registered_model_has_a_contract_test():
    tested = {c.model_name for c in ModelContract.__subclasses__()}
    import test_lightgcn  # noqa: F401  (its contract class)

    tested |= {c.model_name for c in ModelContract.__subclasses__()}
    assert set(MODELS) <= tested, set(MODELS) - tested
