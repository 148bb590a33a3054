"""Compatibility shims that RecBole 1.2.1 needs on torch 2.13 and dgl 1.1.3 (used by run.py).

* ``torch.load``: torch >= 2.6 defaults to ``weights_only=True``.  RecBole saves its best
  checkpoint as a dict holding its ``Config`` object and RNG states and reloads it with a plain
  ``torch.load(file)`` (``Trainer.evaluate(load_best_model=True)``, ``resume_checkpoint``), which
  then fails with "Weights only load failed".  The shim makes ``weights_only=False`` the default
  again; only our own checkpoints are loaded this way.
* dgl (KGAT only): RecBole's ``KGAT.init_graph`` was written for dgl 0.x and calls
  ``dgl.edge_subgraph(g, edges, preserve_nodes=True)`` (renamed ``relabel_nodes=False``) and
  ``g.adjacency_matrix(transpose=False, scipy_fmt="coo")`` (moved to ``g.adj_external`` with the
  same meaning: rows are source nodes when ``transpose=False``).  Both are translated.
"""

from __future__ import annotations

import functools

import torch

_applied: set[str] = set()


def patch_torch_load() -> None:
    if "torch" in _applied:
        return
    orig = torch.load

    @functools.wraps(orig)
    def load(*args, **kwargs):
        kwargs.setdefault("weights_only", False)
        return orig(*args, **kwargs)

    torch.load = load
    _applied.add("torch")


def patch_dgl() -> bool:
    """Apply the dgl shims; False when dgl cannot be imported."""
    if "dgl" in _applied:
        return True
    try:
        import dgl
    except Exception:  # noqa: BLE001 - any import failure means: no KGAT
        return False
    orig_es = dgl.edge_subgraph

    @functools.wraps(orig_es)
    def edge_subgraph(graph, edges, *args, preserve_nodes=None, **kwargs):
        if preserve_nodes is not None:
            kwargs.setdefault("relabel_nodes", not preserve_nodes)
        return orig_es(graph, edges, *args, **kwargs)

    dgl.edge_subgraph = edge_subgraph
    orig_adj = dgl.DGLGraph.adjacency_matrix

    def adjacency_matrix(self, etype=None, *, transpose=None, scipy_fmt=None, ctx=None):
        if transpose is None and scipy_fmt is None and ctx is None:
            return orig_adj(self, etype)
        kw = {"transpose": bool(transpose), "scipy_fmt": scipy_fmt, "etype": etype}
        if ctx is not None:
            kw["ctx"] = ctx
        return self.adj_external(**kw)

    dgl.DGLGraph.adjacency_matrix = adjacency_matrix
    _applied.add("dgl")
    return True


def patch_torch_scatter() -> str:
    """Provide ``torch_scatter.scatter_mean`` (KGIN) in pure torch when the package is missing.

    torch-scatter has no wheel for torch 2.13 on PyPI (source only, a C++/CUDA extension build).
    KGIN uses one call, ``scatter_mean(src=[E, d], index=[E], dim_size=n, dim=0)``; this is the
    same function: per-index sum over ``dim`` divided by the count (empty slots stay 0).
    Returns "native" or "shim".
    """
    import sys
    import types

    try:
        import torch_scatter  # noqa: F401

        return "native"
    except ImportError:
        pass

    def scatter_mean(src, index, dim=-1, out=None, dim_size=None):
        if out is not None:
            raise NotImplementedError("compat scatter_mean: out= is not supported")
        dim = dim % src.dim()
        if index.dim() != 1 or index.numel() != src.shape[dim]:
            raise NotImplementedError("compat scatter_mean: only a 1-D index along `dim`")
        if dim_size is None:
            dim_size = int(index.max()) + 1 if index.numel() else 0
        shape = list(src.shape)
        shape[dim] = dim_size
        total = src.new_zeros(shape).index_add(dim, index, src)
        count = torch.zeros(dim_size, dtype=src.dtype, device=src.device).index_add(
            0, index, torch.ones_like(index, dtype=src.dtype))
        view = [1] * src.dim()
        view[dim] = dim_size
        return total / count.clamp(min=1).view(view)

    mod = types.ModuleType("torch_scatter")
    mod.scatter_mean = scatter_mean
    mod.__compat_shim__ = True
    sys.modules["torch_scatter"] = mod
    return "shim"
