"""A look at one run folder: learning curves as a PNG and a short text summary.

    jnskr report runs/ml100k           # writes runs/ml100k/report.png and prints the summary

The curves come from ``log.jsonl`` (one record per epoch: loss, training seconds, the validation
metrics at evaluation epochs; refit epochs carry ``"refit": true``); the summary from
``metrics.json``, ``config.yaml`` and ``environment.json``.  Needs matplotlib for the PNG.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from jnskr.errors import JnskrError

MATPLOTLIB_HINT = "jnskr report needs matplotlib for the PNG: pip install matplotlib (or --no-plot)"


def _read_json(path: Path, default=None):
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise JnskrError(f"{path}: not readable JSON ({exc})") from None


def read_log(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """(selection epochs, refit epochs) of ``log.jsonl``, each with a cumulative ``elapsed``
    (training seconds since the phase began)."""
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        raise JnskrError(f"{run_dir}: no log.jsonl (not a run folder, or a model with nothing to train)")
    selection, refit = [], []
    for no, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise JnskrError(f"{path}:{no}: not a JSON record") from None
        (refit if rec.get("refit") else selection).append(rec)
    for phase in (selection, refit):
        total = 0.0
        for rec in phase:
            total += float(rec.get("seconds") or 0.0)
            rec["elapsed"] = total
    return selection, refit


def metric_of(metrics: dict, selection: list[dict]) -> str:
    m = metrics.get("select_metric")
    if m:
        return m
    for rec in selection:
        if rec.get("valid"):
            return "recall@20" if "recall@20" in rec["valid"] else sorted(rec["valid"])[0]
    return "recall@20"


def summary(run_dir: str | Path) -> str:
    """Model, data, solver, selection, test metrics and time, as a few lines of text."""
    run = Path(run_dir)
    metrics = _read_json(run / "metrics.json", {}) or {}
    env = _read_json(run / "environment.json", {}) or {}
    status = _read_json(run / "status.json", {}) or {}
    cfg = {}
    if (run / "config.yaml").is_file():
        cfg = yaml.safe_load((run / "config.yaml").read_text()) or {}
    if not metrics and not cfg:
        raise JnskrError(f"{run}: no metrics.json or config.yaml: not a run folder")
    selection, refit = read_log(run) if (run / "log.jsonl").is_file() else ([], [])
    metric = metric_of(metrics, selection)
    data = cfg.get("data") or {}
    lines = [f"run        {run}" + (f"  ({status['status']})" if status.get("status") else ""),
             f"model      {metrics.get('model', cfg.get('model', '?'))}, solver {metrics.get('solver') or '-'}, "
             f"seed {cfg.get('seed', '?')}, device {env.get('device', cfg.get('device', '?'))}",
             f"data       {metrics.get('dataset') or data.get('dataset') or data.get('path') or '?'}"
             + (f" ({data['path']})" if data.get("path") and metrics.get("dataset") else "")]
    if metrics:
        sel = metrics.get("selected_on", "valid")
        best = metrics.get("best_epoch")
        valid = (metrics.get("valid") or {}).get(metric)
        lines.append(f"selection  protocol {metrics.get('protocol')}, on {sel} {metric}: best epoch {best} of "
                     f"{metrics.get('epochs_run')}" + (f", validation {metric} {valid:.4f}" if valid is not None else ""))
        if metrics.get("refit"):
            r = metrics["refit"]
            secs = metrics.get("refit_seconds", r.get("seconds", 0.0))  # seconds after selection ended
            how = ", beside selection" if r.get("beside_selection") else ""
            lines.append(f"refit      {r.get('epochs')} epochs on {r.get('trained_on', 'all of train')}{how} "
                         f"({secs:.1f} s after selection)")
        test = metrics.get("test") or {}
        ks = sorted({int(k.split("@")[1]) for k in test if "@" in k})
        for k in ks:
            parts = [f"{name} {test[f'{name}@{k}']:.4f}" for name in ("recall", "ndcg", "ndcg_kgat", "precision", "hit")
                     if f"{name}@{k}" in test]
            lines.append(f"test @{k:<4} " + "  ".join(parts))
        lines.append(f"time       {metrics.get('train_seconds', 0):.1f} s training"
                     + (f" ({metrics.get('seconds_per_epoch'):.3f} s/epoch)" if metrics.get("seconds_per_epoch") else ""))
    elif selection:
        lines.append(f"unfinished: {len(selection)} epochs logged, no metrics.json yet")
    return "\n".join(lines)


def _finite(xs, ys):
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the learning curves of a run as a PNG (default ``<run>/report.png``): the validation
    metric and the loss, against the epoch and against the training seconds; the refit phase in
    its own colour; the selected epoch marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise JnskrError(MATPLOTLIB_HINT) from None
    run = Path(run_dir)
    out = Path(out) if out is not None else run / "report.png"
    selection, refit = read_log(run)
    metrics = _read_json(run / "metrics.json", {}) or {}
    metric = metric_of(metrics, selection)
    evals = [r for r in selection if r.get("valid") and metric in r["valid"]]
    best = metrics.get("best_epoch")

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    for col, xkey, xlabel in ((0, "epoch", "epoch"), (1, "elapsed", "training seconds (cumulative)")):
        ax = axes[0][col]
        xs, ys = _finite([r[xkey] for r in evals], [r["valid"][metric] for r in evals])
        ax.plot(xs, ys, "o-", color="tab:blue", label=f"validation {metric}")
        if best and any(r["epoch"] == best for r in evals):
            b = next(r for r in evals if r["epoch"] == best)
            ax.axvline(b[xkey], color="tab:green", ls="--", lw=1, label=f"selected: epoch {best}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"validation {metric}")
        ax.grid(alpha=0.3)
        if xs:
            ax.legend(loc="best", fontsize=8)
        ax = axes[1][col]
        xs, ys = _finite([r[xkey] for r in selection], [r.get("loss") for r in selection])
        ax.plot(xs, ys, "-", color="tab:red", label="loss (selection training)")
        if refit:
            xs, ys = _finite([r[xkey] for r in refit], [r.get("loss") for r in refit])
            ax.plot(xs, ys, "-", color="tab:purple", alpha=0.8, label="loss (refit on all of train)")
        losses = [r.get("loss") for r in selection + refit]
        losses = [v for v in losses if v is not None and math.isfinite(v)]
        if losses and min(losses) > 0 and max(losses) > 5 * min(losses):
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("training loss (objective)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    test = (metrics.get("test") or {}).get(metric)
    cfg = {}
    if (run / "config.yaml").is_file():
        cfg = yaml.safe_load((run / "config.yaml").read_text()) or {}
    data = cfg.get("data") or {}
    dataset = metrics.get("dataset") or data.get("dataset") or Path(str(data.get("path") or "?")).name
    title = f"{metrics.get('model') or cfg.get('model', '?')} on {dataset}"
    if metrics.get("solver"):
        title += f" (solver {metrics['solver']})"
    if best:
        title += f": selected epoch {best}"
    if test is not None:
        title += f", test {metric} {test:.4f}"
    if not metrics:
        title += " (unfinished run)"
    fig.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
