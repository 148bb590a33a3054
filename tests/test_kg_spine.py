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


# ----------------------------------------------------------------------------- one DistMult, one Gram op


def _rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def test_jnskr_kg_term_and_kg_distmult_are_one_formula():
    """JNSKR's KG loss (`jnskr.losses.nonsampling_kg_loss`: batch heads weighted by w⁻, every
    relation and tail) is `jnskr kg`'s non-sampling loss with separate head/tail tables (CP's form,
    DistMult's single term) and weights a = w⁻, b = g = 1: equal to each other and to both
    brute-force twins, in value and gradient (float64)."""
    from jnskr.kg.losses import DISTMULT, nonsampling_kge_loss, nonsampling_kge_loss_bruteforce
    from jnskr.losses import nonsampling_kg_loss, nonsampling_kg_loss_bruteforce

    gen = torch.Generator().manual_seed(3)
    B, R, T, d, n = 5, 3, 7, 4, 30
    tabs = [torch.randn(k, d, generator=gen, dtype=torch.float64, requires_grad=True) for k in (B, R, T)]
    key = torch.randperm(B * R * T, generator=gen)[:n]
    pos = torch.stack([key // (R * T), (key // T) % R, key % T], 1)
    w_neg = torch.rand(B, generator=gen, dtype=torch.float64) + 0.2
    ones_r, ones_t = torch.ones(R, dtype=torch.float64), torch.ones(T, dtype=torch.float64)
    jn = nonsampling_kg_loss(*tabs, pos[:, 0], pos[:, 1], pos[:, 2], 1.5, w_neg)
    kg = nonsampling_kge_loss(DISTMULT, *tabs, pos, 1.5, w_neg, ones_r, ones_t)
    brute_jn = nonsampling_kg_loss_bruteforce(*tabs, pos[:, 0], pos[:, 1], pos[:, 2], 1.5, w_neg)
    brute_kg = nonsampling_kge_loss_bruteforce(DISTMULT, *tabs, pos, 1.5, w_neg, ones_r, ones_t)
    assert float(jn.detach()) == float(kg.detach())  # the same terms in the same order: bit for bit
    for x in (brute_jn, brute_kg):
        assert _rel_err((jn + 1.5 * n).detach(), x.detach()) <= 1e-10
    g_jn, g_kg = torch.autograd.grad(jn, tabs), torch.autograd.grad(kg, tabs)
    g_b = torch.autograd.grad(brute_kg, tabs)
    for a, b, c in zip(g_jn, g_kg, g_b):
        assert torch.equal(a, b) and _rel_err(a, c) <= 1e-10


def test_kg_uses_the_shared_gram_ops_and_formula():
    import inspect
    import sys

    import jnskr.kg.losses as kl
    import jnskr.kg.objective as ko
    import jnskr.kg.solver as ks

    gram = sys.modules["jnskr.losses.gram"]  # the package's `gram` attribute is the function

    assert kl.weighted_gram is gram.weighted_gram and ks.weighted_gram is gram.weighted_gram
    assert ko.weighted_grams_with_rows is gram.weighted_grams_with_rows
    for mod in (kl, ko, ks):
        assert "autograd.Function" not in inspect.getsource(mod).replace("_N3(torch.autograd.Function)", "")
    assert "kg_allpairs_term" in inspect.getsource(kl.allpairs) and "positive_term" in inspect.getsource(kl.positive_part)


def test_weighted_grams_with_rows_equal_the_separate_ops():
    from jnskr.losses.gram import weighted_gram, weighted_grams_with_rows

    gen = torch.Generator().manual_seed(2)
    x = torch.randn(9, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    w1, w2 = torch.rand(9, generator=gen, dtype=torch.float64), torch.rand(9, generator=gen, dtype=torch.float64)
    idx = torch.tensor([0, 4, 4, 8])
    up = [torch.randn(3, 3, generator=gen, dtype=torch.float64) for _ in range(2)] + \
        [torch.randn(4, 3, generator=gen, dtype=torch.float64)]
    (g1, g2), rows = weighted_grams_with_rows(x, idx, [w1, w2])
    ref = [weighted_gram(x, w1), weighted_gram(x, w2), x.index_select(0, idx)]
    for a, b in zip((g1, g2, rows), ref):
        assert _rel_err(a.detach(), b.detach()) <= 1e-12
    (ga,) = torch.autograd.grad(sum((o * u).sum() for o, u in zip((g1, g2, rows), up)), x)
    (gb,) = torch.autograd.grad(sum(((o * u).sum() for o, u in zip(
        [((x * w1[:, None]).T @ x), ((x * w2[:, None]).T @ x), x[idx]], up))), x)
    assert _rel_err(ga, gb) <= 1e-12


# ----------------------------------------------------------------------------- the ALS row solver


def test_kg_als_blocks_are_solved_by_the_recommender_row_solver(monkeypatch):
    """`jnskr kg`'s exact blocks go through `jnskr.training.blocks.solve_rows` (its Cholesky and its
    least-squares fallback for singular rows), and the singular fallback is the recommender's."""
    import jnskr.kg.solver as ks
    import jnskr.training.blocks as blocks
    from jnskr.kg.objective import Objective
    from test_kg_losses import problem

    calls = []
    monkeypatch.setattr(ks, "solve_rows", lambda *a, **k: calls.append(a[0]) or blocks.solve_rows(*a, **k))
    spec, tables, pos, a, b, g = problem("cp", 0, n_e=7, n_r=4, d=3, n_pos=30)
    tables = {k: v.detach() for k, v in tables.items()}
    keep = pos[:, 0] != 0  # b = 0: K = 0, so head row 0 (no positives, λ = 0) has a zero system
    obj = Objective(spec, pos[keep], 1.0, a, b * 0, g, reg="l2", lam=0.0)
    new = ks.solve_block(obj, tables, 0)
    assert calls == [7] and torch.isfinite(new).all()
    A, rhs = ks.block_systems(obj, tables, 0)
    assert float(A[0].abs().max()) == 0.0  # row 0: no positives, no negatives, no ridge
    assert torch.allclose(new.double(), blocks.spd_solve(A, rhs), rtol=1e-10, atol=1e-12)
