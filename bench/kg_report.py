"""Markdown tables and docs/img/kg-tta.png from bench/results/kg/{tta,default-command,runs}-*.json.

    python -m bench.kg_tta --report        (or python -m bench.kg_report)

Prints the tables used in docs/results.md and docs/kg.md; writes the plot of test MRR against
training seconds, ours (solid) against PyKEEN (dashed), one panel per small dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "kg"
PLOT = REPO / "docs" / "img" / "kg-tta.png"
SMALL = ("nations", "umls", "kinship")
# Published, filtered, test triples with unseen entities kept.  NS-KGE: Li et al., "Efficient
# Non-Sampling Knowledge Graph Embedding", WWW 2021 (Hits@10 as quoted in issue 12).  LibKGE:
# README of uma-pi1/kge (Ruffinelli et al., ICLR 2020), MRR / Hits@10.
NSKGE_H10 = {("fb15k-237", "distmult"): 0.373, ("fb15k-237", "complex"): 0.390,
             ("wn18rr", "distmult"): 0.462, ("wn18rr", "complex"): 0.485}
LIBKGE = {("fb15k-237", "distmult"): (0.343, 0.531), ("fb15k-237", "complex"): (0.348, 0.536),
          ("wn18rr", "distmult"): (0.452, 0.530), ("wn18rr", "complex"): (0.475, 0.547)}


def _load(pattern: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob(pattern))}


def _load_avg(s: str) -> str:
    return s.split("load average:")[-1].strip() if s else "?"


def at_budget(curve: list[dict], seconds: float) -> dict | None:
    """The evaluation with the best validation MRR among those within `seconds` of training (the
    model a run stopped at that budget would select), or None if there is none."""
    within = [c for c in curve if c["train_seconds"] <= seconds]
    return max(within, key=lambda c: c["valid_mrr"]) if within else None


def small_table(tta: dict[str, dict]) -> str:
    rows = ["| dataset | model | ours: test MRR | H@10 | s to best | PyKEEN (loop): test MRR | H@10 | s to best "
            "| time ratio | ours, s to PyKEEN's best valid MRR | ours stopped at 1/10 of PyKEEN's time: test MRR |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for ds in SMALL:
        doc = tta.get(f"tta-{ds}")
        if not doc:
            continue
        for model, e in doc["models"].items():
            o, p, c = e["ours"], e.get("pykeen"), e.get("compare")
            ours = f"{o['test_at_best']['mrr']:.3f} | {o['test_at_best']['hits@10']:.3f} | " \
                   f"{o['train_seconds_to_best']:.1f}"
            name = model + (" (ALS)" if o.get("solver") == "als" else "")
            if p:
                reach = c["ours_seconds_to_pykeen_best_valid"]
                sel = p["selection"]
                part = "" if sel["trials_done"] >= (sel["trials_planned"] or 0) else \
                    f", {sel['trials_done']}/{sel['trials_planned']} trials"
                peer = f"{p['test_at_best']['mrr']:.3f} ({p['loop']}{part}) | {p['test_at_best']['hits@10']:.3f} | " \
                       f"{p['train_seconds_to_best']:.1f} | {c['ratio_seconds_to_best']:.3f} | " \
                       + ("never" if reach is None else f"{reach:.1f}")
                tenth = at_budget(o["curve"], p["train_seconds_to_best"] / 10)
                peer += " | " + ("no evaluation yet" if tenth is None else
                                 f"{tenth['test_mrr']:.3f} (epoch {tenth['epoch']}, {tenth['train_seconds']:.1f} s)")
            else:
                peer = "– | – | – | – | – | –"
            rows.append(f"| {ds} | {name} | {ours} | {peer} |")
    return "\n".join(rows)


def conditions(tta: dict[str, dict]) -> str:
    out = []
    for ds in SMALL:
        doc = tta.get(f"tta-{ds}")
        if doc:
            out.append(f"- {ds}: {doc['cpu']}, {doc['date']}; load averages (1/5/15 min) before "
                       f"{_load_avg(doc['uptime_start'])}, after {_load_avg(doc['uptime_end'])}")
    return "\n".join(out)


def default_table(dc: dict[str, dict]) -> str:
    rows = ["| command | valid MRR | test MRR | test H@10 | training s (evaluation incl.) | whole command, wall s "
            "| peak RSS MB |", "|---|---:|---:|---:|---:|---:|---:|"]
    for doc in dc.values():
        v, t = doc["valid"]["kept"], doc["test"]["kept"]
        rows.append(f"| `{doc['command']}` | {v['mrr']:.3f} | {t['mrr']:.3f} | {t['hits@10']:.3f} | "
                    f"{doc['seconds_train_incl_eval']:.1f} | {doc['wall_seconds']:.1f} | {doc['peak_rss_mb']:.0f} |")
    return "\n".join(rows)


def _dim(doc: dict) -> int:
    import yaml

    return int(yaml.safe_load(doc["config"])["dim"])


def large_table(runs: dict[str, dict]) -> str:
    rows = ["| dataset | model | d | valid MRR | valid H@10 | test MRR | test H@10 (unseen dropped) | NS-KGE H@10 | "
            "LibKGE MRR / H@10 | s to best (training) | epochs | peak RSS MB |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for doc in sorted(runs.values(), key=lambda d: (d["dataset"], d["model"], _dim(d))):
        key = (doc["dataset"], doc["model"])
        v, t, td = doc["valid"]["kept"], doc["test"]["kept"], doc["test"]["dropped"]
        lib = LIBKGE.get(key, ("–", "–"))
        rows.append(f"| {doc['dataset']} | {doc['model']} | {_dim(doc)} | {v['mrr']:.3f} | {v['hits@10']:.3f} | {t['mrr']:.3f} | "
                    f"{t['hits@10']:.3f} ({td['hits@10']:.3f}) | {NSKGE_H10.get(key, '–'):.3f} | {lib[0]:.3f} / {lib[1]:.3f} | "
                    f"{doc['train_seconds_to_best']:.0f} | {doc['best_epoch']}/{doc['epochs_run']} | "
                    f"{doc['peak_rss_mb']:.0f} |")
    return "\n".join(rows)


def plot(tta: dict[str, dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = [tta[f"tta-{ds}"] for ds in SMALL if f"tta-{ds}" in tta]
    fig, axes = plt.subplots(1, len(docs), figsize=(4.2 * len(docs), 3.6), squeeze=False)
    colors = {"distmult": "tab:blue", "complex": "tab:red", "cp": "tab:green"}
    for ax, doc in zip(axes[0], docs):
        for model, e in doc["models"].items():
            for fw, style in (("ours", "-"), ("pykeen", "--")):
                r = e.get(fw)
                if not r:
                    continue
                xs = [max(c["train_seconds"], 1e-2) for c in r["curve"]]
                label = f"{'jnskr' if fw == 'ours' else 'PyKEEN'} {model}" + (" ALS" if r.get("solver") == "als" else "")
                ax.plot(xs, [c["test_mrr"] for c in r["curve"]], style, color=colors.get(model), label=label, lw=1.4)
                best = next(c for c in r["curve"] if c["epoch"] == r["best_epoch"])
                ax.plot([max(best["train_seconds"], 1e-2)], [best["test_mrr"]], "o", color=colors.get(model), ms=4)
        ax.set_xscale("log")
        ax.set_title(f"{doc['dataset']} (1 thread)")
        ax.set_xlabel("training seconds (wall, evaluation excluded)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test MRR (filtered); dot = best valid epoch")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)
    print(f"wrote {PLOT}")


def section(out: Path, plots: bool = True) -> list[str]:
    """The "Knowledge-graph embedding" section of docs/results.md (bench.report calls this)."""
    import os

    tta, dc, runs = _load("tta-*.json"), _load("default-command-*.json"), _load("runs-*.json")
    if not (tta or dc or runs):
        return []
    md = ["## Knowledge-graph embedding (`jnskr kg`)", "",
          "Filtered link prediction (train+valid+test filter, realistic rank, both directions, test triples with "
          "unseen entities kept); every epoch selected on validation MRR; one thread each, `nice -n 10`.  "
          "Written by `bench/kg_tta.py` (`--dataset`, `--default-command`, `--large`); the objective, solvers and "
          "protocol are in [kg.md](kg.md).", ""]
    if tta:
        md += ["### Nations, UMLS, Kinship: jnskr against PyKEEN 1.11.1, back to back", "",
               "Ours: the dataset's preset (`jnskr/kg/presets/<dataset>.yaml`).  PyKEEN: the loop and "
               "hyper-parameters selected on validation by `bench/peers/pykeen/tune.py` (twice its tuning budget, in "
               "CPU seconds, patience 10 evaluations every 2 epochs).  Seconds: training wall time to the best "
               "validation epoch, evaluation excluded.  Time ratio = ours / PyKEEN.", "",
               small_table(tta), "", "Conditions:", "", conditions(tta), ""]
        if plots:
            plot(tta)
            md += [f"![test MRR against training seconds, jnskr vs PyKEEN]({os.path.relpath(PLOT, out)})", ""]
    if dc:
        md += ["### The default commands (ComplEx presets)", "", default_table(dc), ""]
    if runs:
        md += ["### FB15k-237 and WN18RR (one run each, capped training time)", "",
               "NS-KGE: Li et al., WWW 2021 (Hits@10).  LibKGE: its README (Ruffinelli et al., ICLR 2020).  "
               "Peak RSS of the whole `jnskr kg train` process (`/usr/bin/time -v`).  On FB15k-237 d 200 was chosen over "
               "d 100 on validation for both models (both runs shown); WN18RR was not tuned (FB15k-237's d-100 "
               "settings).  One thread; load averages: " + "; ".join(
                   f"{d['dataset']} {d['model']} d {_dim(d)}: {_load_avg(d['uptime_start'])} → {_load_avg(d['uptime_end'])}"
                   for d in sorted(runs.values(), key=lambda d: (d["dataset"], d["model"], _dim(d)))) + ".", "",
               large_table(runs), ""]
    return md


KG_MD = REPO / "docs" / "kg.md"
BEGIN, END = "<!-- kg-results: written by python -m bench.kg_report -->", "<!-- /kg-results -->"


def update_kg_md(tta: dict, dc: dict, runs: dict) -> None:
    """Replace the results block of docs/kg.md (between BEGIN and END, or the RESULTS-TABLE line)."""
    body = [BEGIN, "", "Side by side with PyKEEN 1.11.1 (selected on validation), one thread each; test MRR / Hits@10 "
            "at the best validation epoch; seconds = training wall time to that epoch.  Conditions, plot and "
            "commands: [results.md](results.md#knowledge-graph-embedding-jnskr-kg).", "", small_table(tta), ""]
    if dc:
        body += ["Default commands:", "", default_table(dc), ""]
    if runs:
        body += ["Large sets (one run each, training capped):", "", large_table(runs), ""]
    block = "\n".join(body + [END])
    text = KG_MD.read_text()
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.replace("RESULTS-TABLE", block)
    KG_MD.write_text(text)
    print(f"wrote {KG_MD}")


def main() -> None:
    tta, dc, runs = _load("tta-*.json"), _load("default-command-*.json"), _load("runs-*.json")
    update_kg_md(tta, dc, runs)
    print("## Small sets: ours vs PyKEEN, side by side\n\n" + small_table(tta) + "\n\n" + conditions(tta))
    if dc:
        print("\n## Default commands\n\n" + default_table(dc))
    if runs:
        print("\n## Large sets\n\n" + large_table(runs))
    if tta:
        plot(tta)


if __name__ == "__main__":
    main()
