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
from jnskr.runs import atomic_write

#: the Software text of every PNG `plot` writes (how `jnskr report` knows a PNG is its own)
PNG_MARK = "jnskr report"

MATPLOTLIB_HINT = "jnskr report needs matplotlib for the PNG: pip install matplotlib (or --no-plot)"


def _read_json(path: Path, default=None):
    """A JSON object file (`default` when missing); anything else is a one-line error."""
    if not path.is_file():
        return default
    try:
        obj = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JnskrError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise JnskrError(f"{path}: expected a JSON object, found {type(obj).__name__}")
    return obj


def _read_config(run: Path) -> dict:
    path = run / "config.yaml"
    if not path.is_file():
        return {}
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise JnskrError(f"{path}: not readable YAML ({str(exc).splitlines()[0]})") from None
    if cfg is not None and not isinstance(cfg, dict):
        raise JnskrError(f"{path}: expected a mapping of config keys, found {type(cfg).__name__}")
    return cfg or {}


def _num(value) -> float | None:
    """A number of a record or metrics file as float (None: missing or not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _fmt(value, spec: str = ".4f") -> str:
    v = _num(value)
    return "-" if v is None else format(v, spec)


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


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
        if not isinstance(rec, dict) or _num(rec.get("epoch")) is None:
            raise JnskrError(f"{path}:{no}: not an epoch record (a JSON object with a numeric epoch)")
        if not isinstance(rec.get("valid", {}) or {}, dict):
            raise JnskrError(f"{path}:{no}: valid must be an object of metrics")
        (refit if rec.get("refit") else selection).append(rec)
    for phase in (selection, refit):
        total = 0.0
        for rec in phase:
            total += _num(rec.get("seconds")) or 0.0
            rec["elapsed"] = total
    return selection, refit


def metric_of(metrics: dict, selection: list[dict]) -> str:
    m = metrics.get("select_metric")
    if m and isinstance(m, str):
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
    cfg = _read_config(run)
    if not metrics and not cfg:
        raise JnskrError(f"{run}: no metrics.json or config.yaml: not a run folder")
    selection, refit = read_log(run) if (run / "log.jsonl").is_file() else ([], [])
    metric = metric_of(metrics, selection)
    data = _dict(cfg.get("data"))
    lines = [f"run        {run}" + (f"  ({status['status']})" if status.get("status") else ""),
             f"model      {metrics.get('model', cfg.get('model', '?'))}, solver {metrics.get('solver') or '-'}, "
             f"seed {cfg.get('seed', '?')}, device {env.get('device', cfg.get('device', '?'))}",
             f"data       {metrics.get('dataset') or data.get('dataset') or data.get('path') or '?'}"
             + (f" ({data['path']})" if data.get("path") and metrics.get("dataset") else "")]
    if metrics:
        sel = metrics.get("selected_on", "valid")
        best = metrics.get("best_epoch")
        valid = _num(_dict(metrics.get("valid")).get(metric))
        lines.append(f"selection  protocol {metrics.get('protocol')}, on {sel} {metric}: best epoch {best} of "
                     f"{metrics.get('epochs_run')}" + (f", validation {metric} {valid:.4f}" if valid is not None else ""))
        if isinstance(metrics.get("refit"), dict) and metrics["refit"]:
            r = metrics["refit"]
            secs = metrics.get("refit_seconds", r.get("seconds", 0.0))  # seconds after selection ended
            how = ", beside selection" if r.get("beside_selection") else ""
            lines.append(f"refit      {r.get('epochs')} epochs on {r.get('trained_on', 'all of train')}{how} "
                         f"({_fmt(secs, '.1f')} s after selection)")
        test = _dict(metrics.get("test"))
        ks = sorted({int(k.split("@")[1]) for k in test if k.count("@") == 1 and k.split("@")[1].isdigit()})
        for k in ks:
            parts = [f"{name} {_fmt(test[f'{name}@{k}'])}" for name in ("recall", "ndcg", "ndcg_kgat", "precision", "hit")
                     if f"{name}@{k}" in test]
            lines.append(f"test @{k:<4} " + "  ".join(parts))
        per_epoch = _num(metrics.get("seconds_per_epoch"))
        lines.append(f"time       {_fmt(metrics.get('train_seconds', 0), '.1f')} s training"
                     + (f" ({per_epoch:.3f} s/epoch)" if per_epoch else ""))
    elif selection:
        lines.append(f"unfinished: {len(selection)} epochs logged, no metrics.json yet")
    return "\n".join(lines)


def _finite(xs, ys):
    pts = [(x, y) for x, y in zip(xs, ys) if _num(y) is not None and math.isfinite(y) and _num(x) is not None]
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
    best = metrics.get("best_epoch") if _num(metrics.get("best_epoch")) is not None else None

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
        losses = [_num(r.get("loss")) for r in selection + refit]
        losses = [v for v in losses if v is not None and math.isfinite(v)]
        if losses and min(losses) > 0 and max(losses) > 5 * min(losses):
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("training loss (objective)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    test = _num(_dict(metrics.get("test")).get(metric))
    cfg = _read_config(run)
    data = _dict(cfg.get("data"))
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
    try:  # through a temporary file and a rename; the PNG says it was written by jnskr report
        atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=100, format="png", metadata={"Software": PNG_MARK}))
    finally:
        plt.close(fig)
    return out
