"""Every registered model against the `ModelContract` (tests/contract.py)."""

import ast
from pathlib import Path

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


def contract_classes() -> dict[str, str]:
    """{model name: test file} of every `ModelContract` subclass in the test files (read, not
    imported: a model's own test file holds its contract class)."""
    out = {}
    for path in sorted(Path(__file__).resolve().parent.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", None) == "ModelContract" for b in node.bases):
                for stmt in node.body:
                    if (isinstance(stmt, ast.Assign) and getattr(stmt.targets[0], "id", None) == "model_name"
                            and isinstance(stmt.value, ast.Constant)):
                        out[stmt.value.value] = path.name
    return out


def test_every_registered_model_has_a_contract_test():
    found = contract_classes()
    assert set(MODELS) <= set(found), set(MODELS) - set(found)
    assert found["lightgcn"] == "test_lightgcn.py" and found["jnskr"] == "test_models.py"
