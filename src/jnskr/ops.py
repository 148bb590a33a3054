"""Ragged (CSR) operations and the one masked top-k, shared by models, losses, evaluation,
explanation, cold start and serving.

A CSR structure is an ``indptr`` [n + 1] (int64) whose row ``i`` owns the flat positions
``indptr[i]:indptr[i + 1]`` of some value arrays (neighbour lists, users of an item, a user's
training items).  A *segment* array names, for every gathered position, the row of the batch it
belongs to, sorted.

>>> import torch
>>> indptr = torch.tensor([0, 2, 2, 5])          # row 0: 2 entries, row 1: none, row 2: 3
>>> seg, pos = csr_gather(indptr, torch.tensor([2, 0]))
>>> seg.tolist(), pos.tolist()
([0, 0, 0, 1, 1], [2, 3, 4, 0, 1])
"""

from __future__ import annotations

import functools
import math
import os
import warnings

import numpy as np
import torch
from torch import Tensor

__all__ = ["cpu_gemm", "csr_gather", "matmul_nt", "segment_softmax", "segment_sum", "topk_masked"]


def _silence_sparse_warnings() -> None:
    """Torch warns once per process, at the first sparse CSR tensor, that CSR support is in beta and
    that invariant checks are off; jnskr's CSR products are stable.  Both fire here, silenced, when
    this module is imported.  Hot paths then never enter `warnings.catch_warnings`, which swaps
    process-wide state: entered in the refit thread (`jnskr.training.lockstep`) it would swallow a
    warning the selection thread emits at the same moment."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.sparse_csr_tensor(torch.tensor([0, 1]), torch.tensor([0]), torch.tensor([1.0]), size=(1, 1))


_silence_sparse_warnings()


@functools.lru_cache(maxsize=None)
def cpu_gemm() -> str:
    """Which BLAS multiplies large CPU matrices, as ``JNSKR_CPU_GEMM`` says: ``torch`` (the library's
    default: nothing depends on the CPU or on what the caller imported first), ``numpy`` (its bundled
    OpenBLAS), or ``auto`` (what the command line and the service set, `jnskr.threads.cli_process_setup`):
    ``numpy`` on AMD CPUs, where the MKL of torch's CPU wheels runs float32 GEMM at half OpenBLAS's
    speed (48 vs 104 GFLOP/s on the 2-core AMD EPYC of bench/results/eval-cpu.json), provided the
    process quieted OpenBLAS's spinning threads before numpy loaded; else ``torch``.  Fixed per
    process, so results do not depend on timing."""
    from jnskr import threads

    env = os.environ.get("JNSKR_CPU_GEMM", "").strip().lower()
    if env in ("torch", "numpy"):
        return env
    if env != "auto" or not threads.BLAS_QUIET:
        return "torch"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            amd = any(line.startswith("vendor_id") and "AuthenticAMD" in line for line in f)
    except OSError:
        amd = False
    return "numpy" if amd else "torch"


def matmul_nt(a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """a @ bᵀ for a [n, d], b [m, d] -> [n, m] (into `out` when given; no autograd).

    >>> matmul_nt(torch.ones(2, 3), torch.arange(6.).view(2, 3)).tolist()
    [[3.0, 12.0], [3.0, 12.0]]
    """
    if (a.device.type == "cpu" and b.device.type == "cpu" and a.dtype == b.dtype
            and a.dtype in (torch.float32, torch.float64) and cpu_gemm() == "numpy"
            and (out is None or (out.dtype == a.dtype and out.is_contiguous()))):
        if out is None:
            out = torch.empty(a.shape[0], b.shape[0], dtype=a.dtype)
        np.matmul(a.detach().numpy(), b.detach().numpy().T, out=out.numpy())
        return out
    return torch.matmul(a, b.T, out=out) if out is not None else a @ b.T


def csr_gather(indptr: Tensor, rows: Tensor, with_ptr: bool = False):
    """Flatten the CSR rows `rows` of a structure.

    Args:
        indptr: int64 [n + 1].
        rows: int64 [B] rows to gather (any order, repeats allowed).
        with_ptr: also return the batch's own row pointer into the flattened list.

    Returns:
        (seg int64 [nnz] batch row 0..B-1 of each entry, pos int64 [nnz] flat position in the
        structure), plus ptr int64 [B + 1] when `with_ptr`.

    >>> seg, pos, ptr = csr_gather(torch.tensor([0, 1, 3]), torch.tensor([1, 1, 0]), with_ptr=True)
    >>> seg.tolist(), pos.tolist(), ptr.tolist()
    ([0, 0, 1, 1, 2], [1, 2, 1, 2, 0], [0, 2, 4, 5])
    """
    start = indptr.index_select(0, rows)
    counts = indptr.index_select(0, rows + 1) - start
    seg = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), counts)
    ends = torch.cumsum(counts, 0)
    offsets = ends - counts
    pos = torch.arange(int(counts.sum()), device=rows.device) - offsets.index_select(0, seg) + start.index_select(0, seg)
    if with_ptr:
        return seg, pos, torch.cat([ends.new_zeros(1), ends])
    return seg, pos


def segment_softmax(scores: Tensor, seg: Tensor, n_seg: int) -> Tensor:
    """Softmax of `scores` within segments (numerically safe: the segment maximum is
    subtracted; an empty segment simply has no entries).

    Args: scores float [nnz]; seg int64 [nnz] in 0..n_seg-1; n_seg the number of segments.
    Returns: float [nnz], summing to 1 within every non-empty segment.

    >>> segment_softmax(torch.tensor([0.0, 0.0, 1000.0]), torch.tensor([0, 0, 1]), 2).tolist()
    [0.5, 0.5, 1.0]
    """
    smax = torch.full((n_seg,), -math.inf, dtype=scores.dtype, device=scores.device)
    smax = smax.scatter_reduce(0, seg, scores.detach(), reduce="amax", include_self=True)
    e = torch.exp(scores - smax.index_select(0, seg))
    denom = torch.zeros(n_seg, dtype=scores.dtype, device=scores.device).index_add(0, seg, e)
    return e / denom.index_select(0, seg)


def segment_sum(ptr: Tensor, w: Tensor, x: Tensor) -> Tensor:
    """Σ_{f in segment b} w_f x_f for sorted segments given by their row pointer.

    Args: ptr int64 [B + 1]; w float [n]; x float [n, d].
    Returns: float [B, d] (zeros for empty segments).

    A CSR matrix product: parallel and without the [n, d] temporary of `index_add(w * x)`.  No
    autograd (the callers' backward passes are written by hand).

    >>> segment_sum(torch.tensor([0, 2, 2, 3]), torch.tensor([1.0, 2.0, 3.0]), torch.ones(3, 2)).tolist()
    [[3.0, 3.0], [0.0, 0.0], [3.0, 3.0]]
    """
    n = x.shape[0]
    a = torch.sparse_csr_tensor(ptr, torch.arange(n, device=x.device), w.to(x.dtype), size=(len(ptr) - 1, n))
    return a @ x


def topk_masked(scores: Tensor, k: int, exclude: tuple[Tensor, Tensor] | None = None,
                candidates: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Top-k of each row of `scores` after masking: the one ranking step of evaluation,
    recommendation, similarity and serving.

    Args:
        scores: float [n, N]; **written in place** (-inf at masked entries).
        k: list length; capped at N.
        exclude: (rows int64 [m], cols int64 [m]) entries that are not candidates (e.g. each
            user's training items, from `csr_gather`), or None.
        candidates: bool [N] items allowed for every row, or None (all).

    Returns:
        (values float [n, min(k, N)], indices int64 [n, min(k, N)]), best first.  A row with
        fewer than k candidates ends in -inf values (their indices are arbitrary: test
        ``torch.isfinite(values)``).  Ties are broken by `torch.topk`, i.e. arbitrarily.

    >>> v, i = topk_masked(torch.tensor([[3.0, 1.0, 2.0]]), 2, exclude=(torch.tensor([0]), torch.tensor([0])))
    >>> v.tolist(), i.tolist()
    ([[2.0, 1.0]], [[2, 1]])
    """
    if exclude is not None and len(exclude[0]):
        scores.index_put_(exclude, torch.tensor(-math.inf, dtype=scores.dtype, device=scores.device))
    if candidates is not None:
        scores.masked_fill_(~candidates.unsqueeze(0), -math.inf)
    k = max(0, min(int(k), scores.shape[1]))
    return torch.topk(scores, k, dim=1, largest=True, sorted=True)
