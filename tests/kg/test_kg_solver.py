"""Closed-form block steps (float64): each zeroes its block's gradient of the brute-force F and
never increases F; blocks that are not quadratic are refused."""

import pytest
import torch

from jnskr.kg.models import MODELS
from jnskr.kg.objective import Objective
from jnskr.kg.solver import block_systems, solve_block

from test_kg_losses import problem, rel_err

EXACT = [("distmult", 1), ("complex", 1), ("cp", 0), ("cp", 1), ("cp", 2)]


def _objective(name, seed, weighting="uniform", lam=0.05, c_scale=1.0):
    spec, tables, pos, a, b, g = problem(name, seed, n_e=7, n_r=4, d=3, n_pos=30)
    obj = Objective(spec, pos, 1.0, a, b * c_scale, g, reg="l2", lam=lam, weighting=weighting)
    return spec, {k: v.detach() for k, v in tables.items()}, obj


@pytest.mark.parametrize("name,role", EXACT)
@pytest.mark.parametrize("weighting,lam,c_scale", [("uniform", 0.05, 1.0), ("frequency", 0.2, 1.0),
                                                   ("uniform", 0.05, 8.0), ("uniform", 0.0, 1.0)])
def test_block_solution_zeroes_the_block_gradient(name, role, weighting, lam, c_scale):
    spec, tables, obj = _objective(name, 11, weighting, lam, c_scale)
    table = spec.roles[role]
    before = float(obj.bruteforce(tables))
    new = dict(tables)
    new[table] = solve_block(obj, tables, role).requires_grad_(True)
    f = obj.bruteforce(new)
    (grad,) = torch.autograd.grad(f, new[table])
    # scale: the gradient's size at the starting point of the block
    old = dict(tables)
    old[table] = tables[table].clone().requires_grad_(True)
    (g0,) = torch.autograd.grad(obj.bruteforce(old), old[table])
    assert float(grad.abs().max()) <= 1e-8 * float(g0.abs().max())
    assert float(f.detach()) <= before + 1e-12 * abs(before)


@pytest.mark.parametrize("name,role", EXACT)
def test_exact_steps_never_increase_f(name, role):
    spec, tables, obj = _objective(name, 3)
    values = [obj.value(tables)]
    for _ in range(3):
        for r in spec.exact_roles():
            tables = {**tables, spec.roles[r]: solve_block(obj, tables, r)}
            values.append(obj.value(tables))
    assert all(b <= a + 1e-12 * abs(a) for a, b in zip(values, values[1:]))
    assert abs(values[-1] - float(obj.bruteforce(tables))) <= 1e-10 * abs(values[-1])


def test_chunked_solve_equals_one_chunk():
    spec, tables, obj = _objective("cp", 5)
    one = solve_block(obj, tables, 0)
    many = solve_block(obj, tables, 0, memory_mb=1e-4)  # one row per chunk
    assert rel_err(many, one) <= 1e-12


def test_block_systems_are_symmetric_positive_definite():
    _, tables, obj = _objective("complex", 2)
    A, rhs = block_systems(obj, tables, 1)
    assert rel_err(A, A.transpose(1, 2)) <= 1e-12
    assert float(torch.linalg.eigvalsh(A).min()) > 0
    assert rhs.shape == (4, 6)


def test_unseen_rows_without_regularisation_fall_back_to_least_squares():
    spec, tables, pos, a, b, g = problem("cp", 0, n_e=7, n_r=4, d=3, n_pos=30)
    pos = pos[pos[:, 0] != 0]  # head row 0 has no positives; with λ = 0 its system is K alone
    obj = Objective(spec, pos, 1.0, a, b, g, reg="l2", lam=0.0)
    new = solve_block(obj, {k: v.detach() for k, v in tables.items()}, 0)
    assert torch.isfinite(new).all() and float(new[0].abs().max()) < 1e-8


def test_non_quadratic_blocks_and_n3_are_refused():
    spec, tables, obj = _objective("distmult", 0)
    with pytest.raises(ValueError, match="not quadratic"):
        solve_block(obj, tables, 0)
    obj.reg = "n3"
    with pytest.raises(ValueError, match="l2"):
        solve_block(obj, tables, 1)


def test_exact_roles_of_the_registry():
    assert MODELS["distmult"].exact_roles() == [1]
    assert MODELS["complex"].exact_roles() == [1]
    assert MODELS["cp"].exact_roles() == [0, 1, 2]
