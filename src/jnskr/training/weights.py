"""The constant loss weights of docs/spec.md §3.1 (computed once from the training data)."""

from __future__ import annotations

import numpy as np


def cf_negative_weights(item_counts: np.ndarray, c0: float, beta: float) -> np.ndarray:
    """c⁻_v = c0 · f_v^β / Σ f^β, f_v = |U⁺(v)| / |Y|.  Items without interactions get 0.

    item_counts: [N] training users per item (un-truncated).  -> float64 [N], sums to c0.
    """
    f = np.asarray(item_counts, dtype=np.float64)
    total = f.sum()
    if total <= 0:
        return np.zeros_like(f)
    fb = np.where(f > 0, (f / total) ** beta, 0.0)
    return c0 * fb / fb.sum()


def kg_negative_weights(
    kg_degrees: np.ndarray, item_counts: np.ndarray, c1: float, beta: float, mode: str = "deg"
) -> np.ndarray:
    """w⁻_v per head item.  kg_degrees: [N] |𝒩(v)|; item_counts: [N] |U⁺(v)|.  -> float64 [N].

    deg (default, the upstream fix of 2020-09-17): c1 · g_v^β / Σ g^β, g_v = |𝒩(v)|/|G'|.
    legacy (as the paper's code ran): c1 · f_v^β / Σ g^β, f_v = |U⁺(v)|/|Y|.
    Heads without facts get 0 (they have no KG term).
    """
    g = np.asarray(kg_degrees, dtype=np.float64)
    if g.sum() <= 0:
        return np.zeros_like(g)
    gb = np.where(g > 0, (g / g.sum()) ** beta, 0.0)
    denom = gb.sum()
    if mode == "deg":
        return c1 * gb / denom
    if mode == "legacy":
        f = np.asarray(item_counts, dtype=np.float64)
        fb = np.where(f > 0, (f / max(f.sum(), 1.0)) ** beta, 0.0)
        return np.where(g > 0, c1 * fb / denom, 0.0)
    raise ValueError(f"kg_neg_weight must be deg or legacy, not {mode!r}")


def positive_weights(values: np.ndarray | None, c_pos: float) -> np.ndarray | None:
    """c⁺_uv = c_pos · value_uv per training pair (``data.weight: confidence``), aligned with the
    `Interactions.values` it is given (float64 [nnz]).

    None when there are no values or every value is 1: every pair then weighs the scalar c_pos,
    and training takes the unweighted code path (the same numbers, bit for bit)."""
    if values is None:
        return None
    v = np.asarray(values, dtype=np.float64)
    if bool(np.all(v == 1.0)):
        return None
    return c_pos * v
