"""`jnskr kg` on the shared spine: one registry, the project's YAML reader and Strict base, the
recommender's row solver and Gram ops, one DistMult formula, and resume / stop / progress."""

import pytest
import torch

from jnskr.data.config import Strict
from jnskr.errors import ConfigError, JnskrError
from jnskr.kg.config import KGConfig, _load_yaml, build_config
from jnskr.kg.models import MODELS, get_model
from jnskr.registry import Registry


# ----------------------------------------------------------------------------- registry and config


def test_registry_registers_looks_up_and_names_the_known_ones():
    reg = Registry("widget")

    @reg.register
    class A:
        name = "a"

    b = reg.register(object(), name="b")
    assert reg.get("a") is A and reg["b"] is b and reg.names() == ["a", "b"] and list(reg) == ["a", "b"]
    assert "a" in reg and "c" not in reg and len(reg) == 2
    with pytest.raises(JnskrError, match=r"^unknown widget 'c' \(known: a, b\)$"):
        reg.get("c")
    reg.register(A)  # the same object again: no-op
    with pytest.raises(ValueError, match="registered twice"):
        reg.register(object(), name="a")


def test_kg_models_live_in_the_shared_registry():
    assert isinstance(MODELS, Registry) and MODELS.names() == ["distmult", "complex", "cp"]
    with pytest.raises(ConfigError, match=r"unknown KG model 'transe' \(known: complex, cp, distmult\)"):
        get_model("transe")


def test_kg_config_uses_the_project_strict_base():
    assert issubclass(KGConfig, Strict)


def test_kg_yaml_is_read_by_yamlsafe_duplicate_keys_and_depth(tmp_path):
    with pytest.raises(ConfigError, match=r"^preset x:2: duplicate key 'a' \(first on line 1\)$"):
        _load_yaml("a: 1\na: 2\n", "preset x")
    with pytest.raises(ConfigError, match="nested more than"):
        _load_yaml("a: " + "[" * 40 + "]" * 40 + "\n", "preset x")
    with pytest.raises(ConfigError, match="duplicate key 'c_pos'"):  # plain yaml.safe_load kept the last one
        build_config("default", overrides=["loss={c_pos: 1, c_pos: 2}"])
