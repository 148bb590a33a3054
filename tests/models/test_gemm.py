"""The CPU GEMM of scoring (jnskr.ops.matmul_nt / cpu_gemm) and the thread settings it relies on."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import synthetic_dataset
from jnskr import ops, threads
from jnskr.evaluation import evaluate
from jnskr.ops import cpu_gemm, matmul_nt


@pytest.fixture
def backend(monkeypatch):
    """Force a GEMM backend for the test; the per-process choice is restored afterwards."""

    def use(name):
        monkeypatch.setenv("JNSKR_CPU_GEMM", name)
        cpu_gemm.cache_clear()

    yield use
    monkeypatch.delenv("JNSKR_CPU_GEMM", raising=False)
    cpu_gemm.cache_clear()


@pytest.mark.parametrize("name", ["torch", "numpy"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matmul_nt_is_a_times_b_transposed(backend, name, dtype):
    backend(name)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(37, 8, generator=g, dtype=dtype), torch.randn(53, 8, generator=g, dtype=dtype)
    want = a @ b.T
    torch.testing.assert_close(matmul_nt(a, b), want)
    out = torch.full((37, 53), float("nan"), dtype=dtype)
    assert matmul_nt(a, b, out) is out
    torch.testing.assert_close(out, want)
    view = torch.empty(40, 53, dtype=dtype)[:37]  # a contiguous slice of a reused buffer
    torch.testing.assert_close(matmul_nt(a, b, view), want)


def test_the_choice_follows_the_override_and_falls_back_to_torch(backend, monkeypatch):
    backend("numpy")
    assert cpu_gemm() == "numpy"
    monkeypatch.delenv("JNSKR_CPU_GEMM")
    monkeypatch.setattr(threads, "BLAS_QUIET", False)  # numpy was loaded before jnskr: OpenBLAS threads spin
    cpu_gemm.cache_clear()
    assert cpu_gemm() == "torch"


def test_evaluation_gives_the_same_metrics_with_either_gemm(backend):
    from jnskr.config import build_config
    from jnskr.data.kg import build_item_kg
    from jnskr.models import JNSKR

    ds = synthetic_dataset(n_users=300, n_items=200, n_entities=320)
    ikg = build_item_kg(ds.kg, ds.n_items, ds.train.item_counts())
    model = JNSKR(ds.n_users, ds.n_items, ikg, build_config("default").jnskr).eval()
    results = {}
    for name in ("torch", "numpy"):
        backend(name)
        model.prepare_scoring()
        results[name] = evaluate(model, ds.test, ds.train, batch_size=64).metrics
    assert results["torch"] == results["numpy"]


def test_the_command_line_quiets_openblas_without_overriding_the_user():
    code = "import os, jnskr.cli, numpy; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), jnskr.threads.BLAS_QUIET)"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["4", "True"]
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OPENBLAS_THREAD_TIMEOUT": "9"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["9", "True"]
    late = "import numpy, os, jnskr.cli; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), jnskr.threads.BLAS_QUIET)"
    out = subprocess.run([sys.executable, "-c", late], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "False"]
