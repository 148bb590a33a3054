"""Evaluation: full-ranking top-K metrics (docs/spec.md §6), the batched evaluator, sparsity groups."""

from jnskr.evaluation.evaluator import DEFAULT_BATCH_SIZE, DEFAULT_K_MAX, DEFAULT_KS, EvalResult, Scorer, evaluate
from jnskr.evaluation.groups import SparsityGroups, evaluate_groups, group_metrics, sparsity_groups
from jnskr.evaluation.metrics import METRIC_NAMES, metric_keys, metric_sums, per_user_metrics, topk_hits

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_KS",
    "DEFAULT_K_MAX",
    "EvalResult",
    "METRIC_NAMES",
    "Scorer",
    "SparsityGroups",
    "evaluate",
    "evaluate_groups",
    "group_metrics",
    "metric_keys",
    "metric_sums",
    "per_user_metrics",
    "sparsity_groups",
    "topk_hits",
]
