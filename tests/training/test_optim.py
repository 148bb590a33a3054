"""jnskr's Adagrad (training/optim.py) against torch.optim.Adagrad, and the start-up it saves."""

import subprocess
import sys

import pytest
import torch

from jnskr.training import optim
from jnskr.training.optim import Adagrad


def _problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(40, 6, generator=g, dtype=torch.float32).requires_grad_(True),
            torch.randn(7, generator=g, dtype=torch.float32).requires_grad_(True)]


def _steps(params, opt, n):
    for _ in range(n):
        opt.zero_grad(set_to_none=True)
        loss = sum((p ** 3).sum() + (p * torch.arange(p.numel()).view_as(p)).sum() for p in params)
        loss.backward()
        opt.step()


def _groups(params):
    return [{"params": [params[0]], "weight_decay": 0.01}, {"params": [params[1]], "weight_decay": 0.0}]


def test_same_bits_as_torch_fused_adagrad():
    a, b = _problem(), _problem()
    _steps(a, Adagrad(_groups(a), 0.1, 1e-8), 25)
    _steps(b, torch.optim.Adagrad(_groups(b), lr=0.1, initial_accumulator_value=1e-8, eps=0.0, fused=True), 25)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_foreach_path_matches_torch(monkeypatch):
    monkeypatch.setattr(optim, "_FUSED", None)
    a, b = _problem(1), _problem(1)
    _steps(a, Adagrad(_groups(a), 0.1, 1e-8), 25)
    _steps(b, torch.optim.Adagrad(_groups(b), lr=0.1, initial_accumulator_value=1e-8, eps=0.0, foreach=True), 25)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


def test_state_dict_round_trips_with_torch_layout():
    """A checkpoint written by torch's Adagrad (earlier versions) resumes here, and ours continues
    exactly as an uninterrupted run."""
    a, b, c = _problem(2), _problem(2), _problem(2)
    torch_opt = torch.optim.Adagrad(_groups(a), lr=0.1, initial_accumulator_value=1e-8, eps=0.0, fused=True)
    _steps(a, torch_opt, 5)
    ours = Adagrad(_groups(b), 0.1, 1e-8)
    _steps(b, ours, 5)
    assert torch.equal(a[0], b[0])
    resumed = Adagrad(_groups(c), 0.1, 1e-8)
    with torch.no_grad():
        for p, q in zip(c, b):
            p.copy_(q)
    resumed.load_state_dict(torch_opt.state_dict())
    _steps(c, resumed, 5)
    _steps(b, ours, 5)
    for x, y in zip(b, c):
        assert torch.equal(x, y)
    again = Adagrad(_groups(_problem(3)), 0.1, 1e-8)
    again.load_state_dict(ours.state_dict())
    assert torch.equal(again.state_dict()["state"][0]["sum"], ours.state_dict()["state"][0]["sum"])


def test_mismatched_state_is_refused():
    opt = Adagrad(_groups(_problem()), 0.1, 1e-8)
    other = Adagrad([torch.zeros(3, requires_grad=True)], 0.1, 1e-8)
    with pytest.raises(ValueError, match="does not match"):
        opt.load_state_dict(other.state_dict())


def test_making_the_optimizer_does_not_import_dynamo():
    """torch.optim's param groups import torch._dynamo (~1.6 s of every run's start-up here)."""
    code = ("import sys, torch\nfrom jnskr.training.trainer import make_optimizer\n"
            "make_optimizer([torch.zeros(3, requires_grad=True)], 'adagrad', 0.1, 1e-8)\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
