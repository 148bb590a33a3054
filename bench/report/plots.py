"""The PNGs of docs/img/results-*.png: training curves (Recall@20 against epoch and against training
time) and bar charts of the test metrics.  Needs matplotlib."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bench.report.load import (
    DATASET_TITLES,
    REF,
    SRC_JNSKR,
    SRC_PAPER,
    SRC_PORT,
    SRC_README,
    SRC_RECBOLE,
    Row,
)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8, "svg.hashsalt": "jnskr"})
    return plt


def _colors(rows: list[Row]) -> dict:
    import matplotlib

    # no reds: red is JNSKR's
    palette = ([matplotlib.colormaps["tab10"](i) for i in (0, 1, 2, 4, 5, 6, 7, 8, 9)]
               + [matplotlib.colormaps["tab20"](i) for i in (1, 3, 5, 9, 11, 13, 15, 17, 19)])
    out, i = {}, 0
    for r in rows:
        key = (r.source, r.model)
        if r.source == SRC_JNSKR and r.model == REF:
            out[key] = "tab:red"
        else:
            out[key] = palette[i % len(palette)]
            i += 1
    return out


def _curve(row: Row, run: dict) -> tuple[list, list, list]:
    """(epochs, cumulative training seconds, Recall@20) of one run's evaluation points."""
    ep, sec, val = [], [], []
    if row.source == SRC_RECBOLE:
        total = 0.0
        for e in run.get("epochs") or []:
            total += e.get("train_seconds") or 0.0
            if e.get("valid_score") is None:
                continue
            ep.append(e.get("epoch"))
            sec.append(total)
            val.append(e["valid_score"])
    else:
        for c in run.get("curve") or []:
            v = c.get("valid_recall@20", c.get("test_recall@20"))
            if v is None:
                continue
            ep.append(c.get("epoch"))
            sec.append(c.get("seconds"))
            val.append(v)
    return ep, sec, val


def _machine_short(rows: list[Row]) -> str:
    jn, rb = set(), set()
    for r in rows:
        for run in r.runs:
            m = run.get("machine") or {}
            if r.source == SRC_JNSKR:
                jn.add(f"{m.get('cpu', '?')}, {m.get('torch_threads', '?')} thread(s), {m.get('device', '?')}")
            elif r.source == SRC_RECBOLE:
                th = run.get("threads") or {}
                rb.add(f"{m.get('cpu', '?')}, {th.get('torch', '?')} thread(s), cpu")
    parts = []
    if jn:
        parts.append("jnskr: " + " / ".join(sorted(jn)))
    if rb:
        parts.append("RecBole: " + " / ".join(sorted(rb)))
    return "; ".join(parts) or "?"


SHORT_SOURCE = {SRC_README: "RecBole earlier, README", SRC_PAPER: "paper", SRC_PORT: "3rd-party port"}
BAR_STYLE = {  # source -> (colour, filled)
    SRC_JNSKR: ("tab:blue", True), SRC_RECBOLE: ("tab:gray", True), SRC_README: ("0.45", False),
    SRC_PAPER: ("tab:brown", False), SRC_PORT: ("tab:olive", False),
}


def plot_curves(path: Path, ds: str, protocol: str, rows: list[Row], title_extra: str = "") -> bool:
    rows = [r for r in rows if any(_curve(r, run)[0] for run in r.runs)]
    if not rows:
        return False
    plt = _plt()
    colors = _colors(rows)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    split = "test" if protocol == "paper" else "validation"
    for r in rows:
        style = "-" if r.source == SRC_JNSKR else "--"
        for i, run in enumerate(r.runs):
            ep, sec, val = _curve(r, run)
            if not ep:
                continue
            label = f"{r.model} ({r.source}, {len(r.runs)} seed{'s' if len(r.runs) > 1 else ''})" if i == 0 else None
            kw = dict(color=colors[(r.source, r.model)], ls=style, lw=1.6 if r.model == REF else 1.1,
                      alpha=0.9 if i == 0 else 0.45, marker="o" if len(ep) <= 30 else None, ms=2.5)
            ax1.plot(ep, val, label=label, **kw)
            ax2.plot(sec, val, **kw)
    ax1.set_xlabel("epoch")
    ax2.set_xlabel("cumulative training time (s, evaluation excluded)")
    for ax in (ax1, ax2):
        ax.set_ylabel(f"{split} Recall@20")
        ax.grid(alpha=0.3)
    if max((max(_curve(r, run)[1] or [0]) for r in rows for run in r.runs), default=0) > 0:
        secs = [s for r in rows for run in r.runs for s in _curve(r, run)[1] if s and s > 0]
        if secs and max(secs) / min(secs) > 100:
            ax2.set_xscale("log")
            ax2.set_xlabel("cumulative training time (s, log scale; evaluation excluded)")
    ax1.set_title(f"(a) {split} Recall@20 vs epoch")
    ax2.set_title(f"(b) time to accuracy: {split} Recall@20 vs training time")
    key = [("solid: jnskr", any(r.source == SRC_JNSKR for r in rows)),
           ("dashed: RecBole", any(r.source == SRC_RECBOLE for r in rows)),
           ("one line per seed (faint: further seeds)", any(len(r.runs) > 1 for r in rows))]
    fig.suptitle(f"{DATASET_TITLES.get(ds, ds)}, protocol {protocol}{title_extra} — {_machine_short(rows)}\n"
                 + "; ".join(text for text, present in key if present))
    handles, labels = ax1.get_legend_handles_labels()
    ncol = 3 if len(labels) > 8 else 2
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False, bbox_to_anchor=(0.5, 0.0))
    nrows = math.ceil(len(labels) / ncol)
    fig.set_size_inches(12, 4.6 + 0.19 * nrows)
    fig.tight_layout(rect=(0, (0.19 * nrows + 0.1) / (4.6 + 0.19 * nrows), 1, 1))
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return True


def plot_bars(path: Path, ds: str, protocol: str, rows: list[Row], ref: Row | None) -> bool:
    ndcg_key = "ndcg_kgat@20" if protocol == "paper" else "ndcg@20"
    rows = [r for r in rows if r.mean("recall@20") is not None or r.mean(ndcg_key) is not None]
    if not rows:
        return False
    plt = _plt()
    n = len(rows)
    fig, axes = plt.subplots(1, 2, figsize=(12, max(3.2, 1.5 + 0.32 * n)), sharey=True)
    y = np.arange(n)[::-1]
    labels = [f"{r.model} [{SHORT_SOURCE.get(r.source, r.source)}]" for r in rows]
    for ax, key, name in ((axes[0], "recall@20", "test Recall@20"),
                          (axes[1], ndcg_key,
                           "test NDCG@20" + (" (legacy)" if protocol == "paper" else " (standard)"))):
        means = [r.mean(key) or 0.0 for r in rows]
        errs = [r.std(key) or 0.0 for r in rows]
        xmax = max(m + e for m, e in zip(means, errs)) or 1.0
        for yi, r, m, e in zip(y, rows, means, errs):
            if r.mean(key) is None:
                ax.text(0, yi, " n/a", va="center", fontsize=7, color="0.4")
                continue
            colour, filled = BAR_STYLE.get(r.source, ("tab:gray", False))
            if r is ref:
                colour = "tab:red"
            elif r.is_ablation:
                colour = "tab:purple"
            ax.barh(yi, m, xerr=e if e else None, color=colour if filled else "white",
                    edgecolor="none" if filled else colour, hatch=None if filled else "///", capsize=2.5,
                    height=0.7, error_kw={"elinewidth": 1})
            ax.text(m + e + 0.012 * xmax, yi, f"{m:.4f}", va="center", fontsize=7)
        ax.set_xlabel(name + " (mean over seeds; bars: ± std)")
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(0, xmax * 1.18)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(labels)
    key = [("red: JNSKR", ref is not None and ref in rows),
           ("blue: jnskr baselines", any(r.source == SRC_JNSKR and r is not ref and not r.is_ablation for r in rows)),
           ("purple: JNSKR variants", any(r.is_ablation for r in rows)),
           ("grey: RecBole", any(r.source == SRC_RECBOLE for r in rows)),
           ("hatched: quoted numbers (README, paper)", any(r.source not in (SRC_JNSKR, SRC_RECBOLE) for r in rows))]
    fig.suptitle(f"{DATASET_TITLES.get(ds, ds)}, protocol {protocol} — test metrics — {_machine_short(rows)}\n"
                 + "; ".join(text for text, present in key if present))
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return True
