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


def positive_weights(values: np.ndarray | None, c_pos: float, alpha: float | None = None) -> np.ndarray | None:
    """c⁺_uv per training pair, aligned with the `Interactions.values` it is given (float64 [nnz]):
    c_pos · value_uv (``data.weight: confidence``), or with a confidence slope α (Hu et al.'s
    c = 1 + α·r) c_pos · (1 + α · value_uv).

    None when every pair weighs the same scalar (`scalar_positive_weight`): no values, or every
    value 1; training then takes the unweighted code path (the same numbers, bit for bit)."""
    if values is None:
        return None
    v = np.asarray(values, dtype=np.float64)
    if bool(np.all(v == 1.0)):
        return None
    return c_pos * v if alpha is None else c_pos * (1.0 + alpha * v)


def scalar_positive_weight(c_pos: float, alpha: float | None = None) -> float:
    """The weight of a pair whose value is 1 (every pair, when `positive_weights` is None)."""
    return float(c_pos) if alpha is None else float(c_pos) * (1.0 + float(alpha))


def row_ridge(reg: float, exponent: float, counts: np.ndarray, negative_mass: np.ndarray | float) -> np.ndarray:
    """Per-row ridge λ·(n_i + ν_i)^ν of a block (Rendle et al. 2022's frequency-scaled iALS ridge
    λ(|I_u| + α₀|I|)^ν): counts [n] observed entries of each row, negative_mass the row's total
    weight of unobserved entries (Σ_v c⁻_v for a user, c⁻_v·M for an item).  ν = 0 is the plain
    ridge λ.  -> float64 [n]."""
    counts = np.asarray(counts, dtype=np.float64)
    if exponent == 0.0:
        return np.full(len(counts), float(reg))
    base = counts + np.asarray(negative_mass, dtype=np.float64)
    return float(reg) * np.where(base > 0, base, 1.0) ** exponent


def block_ridges(reg: float, exponent: float, train, c_neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-row ridges (`row_ridge`) of the user and the item block of the CF objective over
    `train` (an `Interactions`), c_neg [N] the items' negative weights: a user's unobserved mass is
    Σ_v c⁻_v, an item's c⁻_v · M.  -> float64 ([M], [N])."""
    c_neg = np.asarray(c_neg, dtype=np.float64)
    return (row_ridge(reg, exponent, train.user_counts(), c_neg.sum()),
            row_ridge(reg, exponent, train.item_counts(), c_neg * train.n_users))
