"""The whole of docs/results.md: every dataset and protocol's tables and plots, then the sections of the
other bench scripts (`bench.ials`, `bench.tta_report`, `bench.relations`, `bench.kg_report`) and the speed
table.  `main` is the command line (`python -m bench.report`)."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections import defaultdict
from pathlib import Path

from bench.paper import PAPER_TABLE2
from bench.report.load import (
    DASH,
    DATASET_TITLES,
    REF,
    SRC_JNSKR,
    SRC_PAPER,
    SRC_PORT,
    SRC_README,
    SRC_RECBOLE,
    Row,
    is_compared,
    load_jnskr,
    load_recbole,
    mark_superseded,
    reference_rows,
)
from bench.report.plots import plot_bars, plot_curves
from bench.report.protocol import ENMF_GAP, fair_protocol_section
from bench.report.stats import paired_test, paired_test_own_seeds, reference_row, tests_key
from bench.report.tables import (
    ablation_table,
    main_table,
    md_table,
    not_compared_table,
    paper_only_table,
    reproduction_table,
    significance_table,
    sparsity_table,
)

BENCH = Path(__file__).resolve().parents[1]
REPO = BENCH.parent

#: what the data used here is, and how it differs from the paper's (shown under each dataset heading)
DATASET_NOTES = {
    "ml-100k": "MovieLens-100K with its Freebase links as the `recbole` 1.2.1 wheel ships them, split and "
               "filtered exactly as `../shared/data/ml100k-kgat` (same dataset fingerprint, so every number here "
               "is also the ml100k-kgat number).  Not in the paper; hyper-parameters tuned on validation "
               "(`bench/results/tune-ml-100k-*.json`).",
    "amazon-book": "**What differs from the paper.** Interactions: KGAT's Amazon-book split, as in the paper "
                   "(70,679 users, 24,915 items, 652,514 train and 193,920 test pairs; under protocol standard 10% "
                   "of each user's train items are held out for validation, so those runs train on 564,499 pairs). "
                   "Knowledge graph: the paper's `kg_final.txt` (KGAT's Amazon-book KG, 39 relations, 88,572 "
                   "entities, about 2.56M triples) is not available here.  JNSKR runs use the item-entity links of "
                   "JNSKR's `kg_feat.npz` instead: no relation ids (one relation, `linked`), 277,289 links to "
                   "113,487 entities, 277,304 item-headed facts once the reversed item-item links are added.  So "
                   "JNSKR's KG side is much poorer than the paper's; its numbers here are a lower bound for the "
                   "paper's setting.  The code path for the full KG is the KGAT reader (`jnskr data fetch "
                   "amazon-book` with internet).  JNSKR: the spec's (paper's) hyper-parameters, untuned.  ENMF: "
                   "negative weight selected on the validation split (`bench/results/tune-amazon-book-enmf.json`), "
                   "the rest ENMF's defaults.  Timing: these runs ran single-threaded next to other jobs on the "
                   "2 cores, so their s/epoch columns are inflated; uncontended epoch times are in the speed "
                   "table at the end (`bench/epoch.py`).",
    "kgcn-music": "KGCN's Last.FM music data in KGAT format (`../shared/data/kgcn-music`).  Not in the paper; "
                  "hyper-parameters tuned on validation (`bench/results/tune-kgcn-music-*.json`).",
}
DATASET_ORDER = ["ml-100k", "amazon-book", "yelp2018", "last-fm"]
PROTOCOL_ORDER = ["standard", "paper"]


def order_rows(rows: list[Row]) -> list[Row]:
    src_rank = {SRC_JNSKR: 0, SRC_RECBOLE: 1, SRC_README: 2, SRC_PAPER: 3, SRC_PORT: 4}

    def key(r: Row):
        if r.source not in (SRC_JNSKR, SRC_RECBOLE):  # published tables: their own order
            return (src_rank.get(r.source, 9),)
        return (src_rank.get(r.source, 9), r.model != REF and not r.model.startswith(REF + " ["),
                r.is_ablation, r.model.lower())

    return sorted(rows, key=key)


def build(results: Path, out: Path, plots: bool = True) -> str:
    warnings: list[str] = []
    tables: dict = defaultdict(list)
    for src in (load_jnskr(results, warnings), load_recbole(results, warnings)):
        for k, v in src.items():
            tables[k] += v
    for ds in PAPER_TABLE2:
        tables.setdefault((ds, "paper"), [])
    tables.setdefault(("ml-100k", "standard"), [])
    for (ds, protocol), rows in tables.items():
        rows += reference_rows(ds, protocol)
        mark_superseded(rows)
        tables[(ds, protocol)] = order_rows(rows)

    img = out / "img"
    if plots:
        img.mkdir(parents=True, exist_ok=True)
        for stale in sorted(img.glob("results-*.png")):
            stale.unlink()

    def ds_key(ds):
        return (DATASET_ORDER.index(ds) if ds in DATASET_ORDER else len(DATASET_ORDER), ds)

    def proto_key(p):
        return (PROTOCOL_ORDER.index(p) if p in PROTOCOL_ORDER else len(PROTOCOL_ORDER), p)

    md = ["# Results", "",
          "Generated by `python -m bench.report` from `bench/results/**/*.json` (jnskr runs from `bench/compare.py`, "
          "RecBole peers from `bench/peers/recbole`) and the reference numbers in `bench/paper.py`.  Do not edit "
          "by hand.  A dash (–) is a value that was not measured or not published; nothing is imputed.", ""]
    n_runs = sum(len(r.runs) for rows in tables.values() for r in rows)
    if not n_runs:
        md += ["No measured runs were found under the results directory: only the published reference numbers "
               "are shown.", ""]
    md += ["Contents: " + ", ".join(f"[{DATASET_TITLES.get(ds, ds)}](#{_anchor(DATASET_TITLES.get(ds, ds))})"
                                    for ds in sorted({d for d, _ in tables}, key=ds_key))
           + ", [Fair protocol for peers](#fair-protocol-for-peers)", ""]
    md += fair_protocol_section(results)
    for ds in sorted({d for d, _ in tables}, key=ds_key):
        md += [f"## {DATASET_TITLES.get(ds, ds)}", ""]
        if ds in DATASET_NOTES:
            md += [DATASET_NOTES[ds], ""]
        for protocol in sorted({p for d, p in tables if d == ds}, key=proto_key):
            rows = tables[(ds, protocol)]
            slug = f"{re.sub(r'[^a-z0-9]+', '-', ds.lower())}-{protocol}"
            measured = [r for r in rows if r.runs]
            if not measured and ds in PAPER_TABLE2 and protocol == "paper":
                md += [f"### Protocol {protocol}", "", "No jnskr or RecBole runs yet for this dataset.", ""]
                md += paper_only_table(ds)
                continue
            ref = reference_row(rows)
            tests: dict = {}
            if ref is not None:
                for r in rows:
                    if r.source == SRC_JNSKR and r is not ref:
                        tests[tests_key(r)] = {m: paired_test(ref, r, m) for m in ("recall@20", "ndcg@20")}
                    elif r.source == SRC_RECBOLE and is_compared(r):  # never against an untuned/truncated peer
                        tests[tests_key(r)] = {m: paired_test_own_seeds(ref, r, m) for m in ("recall@20", "ndcg@20")}
            md += [f"### Protocol {protocol}: models", ""]
            md += main_table(ds, protocol, rows, ref, tests) + [""]
            if ref is None:
                md += ["(No JNSKR run under this protocol: deltas and tests are not available.)", ""]
            nc = not_compared_table(ds, protocol, rows)
            if nc:
                md += [f"### Protocol {protocol}: peer runs not compared", ""] + nc
            if ref is not None and any(r is not ref and tests_key(r) in tests for r in rows):
                md += [f"### Protocol {protocol}: significance (JNSKR vs in-house baselines and compared peers)", ""]
                md += significance_table(ds, protocol, rows, ref, tests) + [""]
            if ref is not None and any(r.is_ablation for r in rows):
                md += [f"### Protocol {protocol}: JNSKR vs JNSKR-sampled and ablations", ""]
                md += ablation_table(ds, protocol, rows, ref, tests) + [""]
            if protocol == "paper" and ds in PAPER_TABLE2:
                rep = reproduction_table(ds, rows)
                if rep:
                    md += [f"### Protocol {protocol}: our runs vs the paper", ""] + rep
                    if ds == "amazon-book" and any(r.source == SRC_JNSKR and r.model == "ENMF" for r in rows):
                        md += ENMF_GAP + [""]
            sp = sparsity_table(ds, protocol, rows)
            if sp:
                md += [f"### Protocol {protocol}: sparsity study", ""] + sp
            if plots:
                figs = []
                main_rows = [r for r in rows if not r.is_ablation and is_compared(r)]
                abl_rows = [r for r in rows if r.source == SRC_JNSKR and (r is ref or r.is_ablation)]
                if plot_curves(img / f"results-{slug}-curves.png", ds, protocol, main_rows):
                    figs.append((f"results-{slug}-curves.png",
                                 "Recall@20 during training: vs epoch and vs training time"))
                if ref is not None and len(abl_rows) > 1 and plot_curves(
                        img / f"results-{slug}-ablation-curves.png", ds, protocol, abl_rows, " (ablations)"):
                    figs.append((f"results-{slug}-ablation-curves.png", "JNSKR vs JNSKR-sampled and ablations"))
                if measured and plot_bars(img / f"results-{slug}-bars.png", ds, protocol,
                                          [r for r in rows if is_compared(r)], ref):
                    figs.append((f"results-{slug}-bars.png", "test Recall@20 and NDCG@20 per model"))
                if figs:
                    md += [f"### Protocol {protocol}: plots", ""]
                    for name, alt in figs:
                        rel = os.path.relpath(img / name, out)
                        md += [f"![{ds}, {protocol}: {alt}]({rel})", ""]
    md += ials_section(results)
    md += tta_section(out, plots)
    md += relations_section(results)
    md += kg_section(out, plots)
    md += speed_section(results, out)
    if warnings:
        md += ["## Input warnings", ""] + [f"- {w}" for w in warnings] + [""]
    text = "\n".join(md).rstrip() + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(text)
    return text


def tta_section(out: Path, plots: bool) -> list[str]:
    """Time to accuracy against implicit, from bench.tta_report (results/tta/*.json)."""
    from bench import tta_report

    return tta_report.section(out, plots)


def ials_section(results: Path) -> list[str]:
    """implicit's ALS and jnskr tuned alike, from bench.ials (results/ials/*.json)."""
    from bench import ials

    return ials.section(results)


def relations_section(results: Path) -> list[str]:
    """The relation-type ablation, from bench.relations (results/relations-ablation.json)."""
    from bench import relations

    return relations.section(results)


def kg_section(out: Path, plots: bool) -> list[str]:
    """The `jnskr kg` section, from bench.kg_report (results/kg/{tta,default-command,runs}-*.json)."""
    from bench import kg_report

    return kg_report.section(out, plots)


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).strip().replace(" ", "-")


def speed_section(results: Path, out: Path) -> list[str]:
    files = sorted(p for p in results.glob("*.json"))
    if not files:
        return []
    lines = ["## Speed and other benchmarks", ""]
    epoch_rows = []
    for p in files:
        d = json.loads(p.read_text()) if p.name.startswith("epoch-") else None
        if not d or not isinstance(d.get("results"), list):
            continue
        m = d.get("machine", {})
        for r in d["results"]:
            if "seconds_per_epoch" not in r:
                continue
            epoch_rows.append([Path(str(r["dataset"])).name, r["model"], str(r["batch_size"]),
                               f"{r['seconds_per_epoch']:.3g}",
                               f"{r['seconds_per_epoch_min']:.3g}" if "seconds_per_epoch_min" in r else DASH,
                               str(r.get("repeats", 1)), "yes" if r.get("extrapolated") else "no",
                               f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else DASH,
                               f"{m.get('cpu', '?')}, {m.get('torch_threads', '?')} threads, {m.get('device', '?')}, commit {m.get('commit', '?')}",
                               f"[{p.name}]({os.path.relpath(p, out)})"])
    if epoch_rows:
        lines += ["Seconds per training epoch from `bench/epoch.py` (a whole epoch timed after a 2-batch warm-up, "
                  "or N batches extrapolated; with several passes the median, and the fastest pass as min).", ""]
        lines += md_table(["Dataset", "Model", "Batch", "s/epoch", "min", "passes", "extrapolated", "peak RSS MB",
                           "machine", "file"], epoch_rows) + [""]
    lines += ["All result files (see the scripts in `bench/` that wrote them):", ""]
    for p in files:
        lines.append(f"- [{p.name}]({os.path.relpath(p, out)})")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    from bench import report

    ap = argparse.ArgumentParser(prog="python -m bench.report", description=report.__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=BENCH / "results", help="results directory (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=REPO / "docs",
                    help="output directory: results.md and img/ (default: %(default)s)")
    ap.add_argument("--no-plots", action="store_true", help="markdown only (no matplotlib needed)")
    args = ap.parse_args(argv)
    build(args.results, args.out, plots=not args.no_plots)
    print(f"wrote {args.out / 'results.md'}" + ("" if args.no_plots else f" and {args.out / 'img'}/results-*.png"))
    return 0
