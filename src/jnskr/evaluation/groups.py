"""KGAT's user sparsity split (docs/spec.md §6, code flag ``--sparsity 1``).

Test users are sorted by their number of interactions (#train + #test) and cut into groups of
roughly equal total interactions.  As in KGAT's ``create_sparsity_split``:

* users with the same interaction count always fall in the same group (cuts happen between
  distinct counts), so the groups' totals are only roughly equal;
* a group is closed as soon as its total reaches ``total / n_groups``; what is left after the
  last cut forms the final group (it may hold less than ``total / n_groups``).  Empty groups are
  dropped (KGAT could emit an empty trailing group), so there are at most `n_groups` groups.

One difference: ``total`` is the interactions of the grouped users (those with a test item),
where KGAT used all of ``n_train + n_test``; the two agree when every user has a test item.
Group 0 is the sparsest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from jnskr.data.dataset import Interactions
from jnskr.evaluation.evaluator import EvalResult, Scorer, evaluate


@dataclass
class SparsityGroups:
    """The sparsity split of the test users."""

    users: np.ndarray  # int64 [m] dense user ids, ascending
    group: np.ndarray  # int64 [m] group id of users[i], 0 = sparsest
    n_interactions: np.ndarray  # int64 [m] #train + #test of users[i]
    edges: list[tuple[int, int]]  # per group: (min, max) interactions per user, inclusive
    group_interactions: np.ndarray  # int64 [G] total interactions per group
    group_sizes: np.ndarray  # int64 [G] users per group

    @property
    def n_groups(self) -> int:
        return len(self.edges)

    def describe(self) -> list[str]:
        """One line per group, in KGAT's wording."""
        return [
            f"group {g}: #inter per user in [{lo}, {hi}], #users={int(self.group_sizes[g])}, "
            f"#all rates={int(self.group_interactions[g])}"
            for g, (lo, hi) in enumerate(self.edges)
        ]


def sparsity_groups(
    train: Interactions,
    test: Interactions,
    n_groups: int = 4,
    users: Sequence[int] | np.ndarray | None = None,
) -> SparsityGroups:
    """Split the users with >= 1 test item (optionally only `users`) into sparsity groups.

    Args:
        train, test: the interactions whose per-user counts are added.
        n_groups: the number of groups aimed at (4 in KGAT); fewer when there are few distinct
            interaction counts.
        users: restrict to these dense user ids.

    Returns:
        a `SparsityGroups`.  The loop is over distinct interaction counts, not over users.
    """
    if n_groups < 1:
        raise ValueError(f"n_groups must be >= 1, got {n_groups}")
    n_test = test.user_counts().astype(np.int64)
    n_train = np.zeros_like(n_test)
    tc = train.user_counts().astype(np.int64)[: len(n_test)]
    n_train[: len(tc)] = tc
    counts_all = n_train + n_test  # [n_users]
    has_test = n_test > 0
    if users is None:
        u = np.flatnonzero(has_test).astype(np.int64)
    else:
        u = np.unique(np.asarray(users, dtype=np.int64))
        u = u[has_test[u]]
    counts = counts_all[u]  # [m]
    if len(u) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return SparsityGroups(u, empty, counts, [], empty, empty)

    values, n_with = np.unique(counts, return_counts=True)  # distinct counts, ascending
    mass = values * n_with  # interactions carried by each distinct count
    threshold = mass.sum() / n_groups
    value_group = np.empty(len(values), dtype=np.int64)  # group of each distinct count
    g, acc = 0, 0
    for j in range(len(values)):  # over distinct counts (few), KGAT's greedy cut
        value_group[j] = g
        acc += int(mass[j])
        if acc >= threshold and j < len(values) - 1:
            g, acc = g + 1, 0
    group = value_group[np.searchsorted(values, counts)]  # [m]
    n_g = int(group.max()) + 1
    group_interactions = np.bincount(value_group, weights=mass, minlength=n_g).astype(np.int64)
    group_sizes = np.bincount(group, minlength=n_g).astype(np.int64)
    edges = [(int(values[value_group == k].min()), int(values[value_group == k].max())) for k in range(n_g)]
    return SparsityGroups(
        users=u,
        group=group,
        n_interactions=counts,
        edges=edges,
        group_interactions=group_interactions,
        group_sizes=group_sizes,
    )


def group_metrics(result: EvalResult, groups: SparsityGroups) -> dict[int, dict[str, Any]]:
    """Average an `EvalResult`'s per-user metrics within each sparsity group.

    Args:
        result: from ``evaluate(..., return_per_user=True)``.  Every evaluated user must be in
            `groups` (build both from the same test data and user restriction).  For several
            processes, gather the per-user arrays first: this works on what `result` holds.
        groups: from `sparsity_groups`.

    Returns:
        ``{g: {"metrics": {key: mean}, "n_users": int, "interactions": (lo, hi),
        "n_interactions": int}}`` for every group g; a group with no evaluated user has NaN
        metrics.
    """
    if result.per_user is None or result.users is None:
        raise ValueError("group_metrics needs evaluate(..., return_per_user=True)")
    pos = np.searchsorted(groups.users, result.users)
    pos = np.clip(pos, 0, max(len(groups.users) - 1, 0))
    if len(result.users) and (len(groups.users) == 0 or np.any(groups.users[pos] != result.users)):
        raise ValueError("some evaluated users are not in the sparsity groups")
    g = groups.group[pos] if len(result.users) else np.zeros(0, dtype=np.int64)
    n_g = groups.n_groups
    n_users = np.bincount(g, minlength=n_g)  # [G]
    out: dict[int, dict[str, Any]] = {}
    sums = {key: np.bincount(g, weights=v, minlength=n_g) for key, v in result.per_user.items()}  # sum, then divide
    for k in range(n_g):
        out[k] = {
            "metrics": {key: (float(s[k] / n_users[k]) if n_users[k] else float("nan")) for key, s in sums.items()},
            "n_users": int(n_users[k]),
            "interactions": groups.edges[k],
            "n_interactions": int(groups.group_interactions[k]),
        }
    return out


def evaluate_groups(
    scorer: Scorer,
    train: Interactions,
    test: Interactions,
    n_groups: int = 4,
    **evaluate_kwargs: Any,
) -> tuple[EvalResult, SparsityGroups, dict[int, dict[str, Any]]]:
    """Evaluate `scorer` (excluding `train`) and break the metrics down by sparsity group.

    `evaluate_kwargs` go to `evaluate` (ks, k_max, batch_size, device, users); per-user values
    are always returned.  Returns (overall result, the groups, `group_metrics`).
    """
    evaluate_kwargs["return_per_user"] = True
    result = evaluate(scorer, test, train, **evaluate_kwargs)
    groups = sparsity_groups(train, test, n_groups=n_groups, users=evaluate_kwargs.get("users"))
    return result, groups, group_metrics(result, groups)
