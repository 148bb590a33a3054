"""The numbers behind the Δ columns and the significance stars: relative deltas, per-user means over
seeds, paired t-test and Wilcoxon signed-rank test over users."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.report.load import REF, SRC_JNSKR, Row

SIG_LEVEL = 0.01  # the significance star: paired t-test p below this


def delta(ref: float | None, other: float | None) -> float | None:
    """Relative difference JNSKR / row - 1."""
    if ref is None or other is None or other == 0:
        return None
    return ref / other - 1.0


def ndcg_delta(ref: Row | None, row: Row) -> tuple[float | None, str]:
    """Delta on NDCG@20: the standard variant where both rows have it, else the legacy one."""
    if ref is None:
        return None, ""
    if ref.mean("ndcg@20") is not None and row.mean("ndcg@20") is not None:
        return delta(ref.mean("ndcg@20"), row.mean("ndcg@20")), ""
    if ref.mean("ndcg_kgat@20") is not None and row.mean("ndcg_kgat@20") is not None:
        return delta(ref.mean("ndcg_kgat@20"), row.mean("ndcg_kgat@20")), " (legacy)"
    return None, ""

def per_user_means(row: Row, seeds: list, metric: str) -> dict[int, float]:
    """user id -> the user's `metric` averaged over `seeds` (users evaluated under every seed)."""
    per_seed = []
    for seed, run in zip(row.seeds, row.runs):
        if seed not in seeds:
            continue
        pu = run.get("per_user") or {}
        users, vals = pu.get("users"), pu.get(metric)
        if not users or not vals or len(users) != len(vals):
            return {}
        per_seed.append(dict(zip((int(u) for u in users), (float(v) for v in vals))))
    if not per_seed:
        return {}
    common = set(per_seed[0]).intersection(*per_seed[1:])
    return {u: float(np.mean([d[u] for d in per_seed])) for u in common}


@dataclass
class Paired:
    seeds: list
    n_users: int
    ref_mean: float
    other_mean: float
    p_t: float | None
    p_w: float | None


def paired_test(ref: Row, other: Row, metric: str) -> Paired | None:
    """Paired t-test and Wilcoxon signed-rank test over users, JNSKR vs `other`, on the seeds
    both have (per-user values averaged over those seeds first)."""
    seeds = [s for s in ref.seeds if s in other.seeds]
    if not seeds:
        return None
    return _paired(per_user_means(ref, seeds, metric), per_user_means(other, seeds, metric), seeds)


def _paired(a: dict, b: dict, seeds: list) -> Paired | None:
    from scipy import stats

    users = sorted(set(a) & set(b))
    if len(users) < 2:
        return None
    x = np.array([a[u] for u in users])
    y = np.array([b[u] for u in users])
    p_t = p_w = None
    if np.any(x != y):
        with np.errstate(all="ignore"):
            p_t = float(stats.ttest_rel(x, y).pvalue)
        try:
            p_w = float(stats.wilcoxon(x, y).pvalue)
        except ValueError:
            p_w = None
    p_t = None if p_t is not None and math.isnan(p_t) else p_t
    return Paired(seeds, len(users), float(x.mean()), float(y.mean()), p_t, p_w)


def paired_test_own_seeds(ref: Row, other: Row, metric: str) -> Paired | None:
    """As `paired_test`, for a peer from another framework, whose seeds do not correspond to ours:
    each side's per-user values are averaged over all its own seeds, then paired by user id."""
    a, b = per_user_means(ref, list(ref.seeds), metric), per_user_means(other, list(other.seeds), metric)
    label = f"{', '.join(map(str, ref.seeds))} vs {', '.join(map(str, other.seeds))}"
    return _paired(a, b, [label])


def tests_key(row: Row) -> tuple:
    """Key of a row's paired tests: source and model (a jnskr ENMF and RecBole's ENMF differ)."""
    return (row.source, row.model)


def reference_row(rows: list[Row]) -> Row | None:
    cands = [r for r in rows if r.source == SRC_JNSKR and (r.model == REF or r.model.startswith(REF + " ["))]
    if not cands:
        return None
    return sorted(cands, key=lambda r: (-len(r.seeds), len(r.overrides), r.model))[0]

