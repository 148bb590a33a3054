"""Formatting and the Markdown tables of docs/results.md (one function per table)."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import numpy as np

from bench.paper import PAPER_TABLE2, RECBOLE_EARLIER_SOURCE
from bench.report.load import (
    DASH,
    DATASET_TITLES,
    NOT_COMPARED,
    SAMPLED,
    SRC_JNSKR,
    SRC_PAPER,
    SRC_PORT,
    SRC_README,
    SRC_RECBOLE,
    Row,
    is_compared,
    peer_status,
)
from bench.report.stats import SIG_LEVEL, Paired, delta, ndcg_delta, tests_key

TIMING_NOTE = ("- Timing columns come from the training runs themselves: one torch thread, and many runs shared the "
               "2 cores with other jobs (and earlier code versions; see each JSON's `machine`), so they are "
               "indicative only.  Uncontended epoch times, all models on the same code, are in the speed table at "
               "the end (`bench/epoch.py`).")
PROTOCOL_TEXT = {
    "standard": "standard (validation = 10% holdout of each user's training items; best epoch by "
                "validation Recall@20; test metrics at that epoch)",
    "paper": "paper (no validation set: the original code's protocol, best epoch chosen on the TEST "
             "set by Recall@10, so optimistic; only this protocol is comparable with the paper's table)",
}


def fmt(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return DASH
    return f"{v:.{digits}f}"


def fmt_ms(row: Row, key: str, digits: int = 4) -> str:
    m, s = row.mean(key), row.std(key)
    if m is None:
        return DASH
    return f"{m:.{digits}f} ± {s:.{digits}f}" if s is not None else f"{m:.{digits}f}"


def fmt_num(v) -> str:
    """Seconds and epochs: 3 significant digits, no scientific notation."""
    if v is None:
        return DASH
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    digits = max(0, 2 - int(math.floor(math.log10(abs(v)))))
    return f"{v:.{digits}f}"


def fmt_epoch(v) -> str:
    if v is None:
        return DASH
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def fmt_p(p) -> str:
    """A p-value as printed in the report (`**` when p < 0.01)."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return DASH
    s = f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"
    return s + (" **" if p < SIG_LEVEL else "")

def fmt_delta(d: float | None, suffix: str = "") -> str:
    return DASH if d is None else f"{d * 100:+.1f}%{suffix}"


def seeds_text(row: Row) -> str:
    if row.source not in (SRC_JNSKR, SRC_RECBOLE):
        return DASH
    return f"{len(row.seeds)} ({', '.join(str(s) for s in row.seeds)})"

def machine_text(rows: list[Row]) -> str:
    parts = []
    jn = set()
    for r in rows:
        for run in r.runs:
            if r.source != SRC_JNSKR:
                continue
            m = run.get("machine") or {}
            jn.add(f"{m.get('cpu', '?')}, {m.get('cpu_count', '?')} cores, {m.get('torch_threads', '?')} "
                   f"torch thread(s), {m.get('device', '?')}, torch {m.get('torch', '?')}")
    if jn:
        parts.append("jnskr: " + "; ".join(sorted(jn)))
    rb = set()
    for r in rows:
        for run in r.runs:
            if r.source != SRC_RECBOLE:
                continue
            m, th, ver = run.get("machine") or {}, run.get("threads") or {}, run.get("versions") or {}
            rb.add(f"{m.get('cpu', '?')}, {m.get('cpu_count', '?')} cores, {th.get('torch', '?')} torch "
                   f"thread(s), nice {th.get('nice', '?')}, RecBole {ver.get('recbole', '?')}, "
                   f"torch {ver.get('torch', '?')}")
    if rb:
        parts.append("RecBole: " + "; ".join(sorted(rb)))
    if any(r.source == SRC_README for r in rows):
        parts.append("RecBole earlier: this machine's 2 CPU cores (README)")
    if any(r.source in (SRC_PAPER, SRC_PORT) for r in rows):
        parts.append("paper: the authors' machine (GPU, not stated per row)")
    return "; ".join(parts) or DASH


def seeds_caption(rows: list[Row]) -> str:
    parts = []
    for src in (SRC_JNSKR, SRC_RECBOLE):
        s = sorted({x for r in rows if r.source == src for x in r.seeds}, key=str)
        if s:
            parts.append(f"{src} {', '.join(map(str, s))}")
    if any(r.source not in (SRC_JNSKR, SRC_RECBOLE) for r in rows):
        parts.append("reference rows: one published run each")
    return "; ".join(parts) or DASH


def md_table(header: list[str], lines: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in lines]
    return out


def caption(ds: str, protocol: str, rows: list[Row], ndcg: str) -> list[str]:
    return [
        f"- **Dataset** {DATASET_TITLES.get(ds, ds)} · **protocol** {PROTOCOL_TEXT.get(protocol, protocol)}",
        f"- **NDCG** {ndcg}",
        f"- **Seeds** {seeds_caption(rows)}",
        f"- **Machine** {machine_text(rows)}",
    ]


NDCG_TEXT = ("`NDCG@20` = standard variant (IDCG over min(K, |test items|)); `NDCG@20 legacy` = the "
             "KGAT/JNSKR code's variant (IDCG over the hits in the top 100, spec §6), the one in the paper's "
             "table.  The legacy value is always ≥ the standard one.")


def _star(p: Paired | None) -> str:
    return " **" if p is not None and p.p_t is not None and p.p_t < SIG_LEVEL else ""


def _tuning_note(r: Row) -> str:
    """What a compared peer's tuning record says: trials and the chosen setting."""
    t = next((run.get("tuning") for run in r.runs if run.get("tuning")), None)
    if not t:
        return ""
    chosen = ", ".join(f"{k} {v}" for k, v in sorted((t.get("chosen") or {}).items()))
    stops = ", ".join(sorted({str(run.get("stopped_by")) for run in r.runs}))
    out = (f"tuned on validation: {t.get('n_trials', len(t.get('trials') or []))} trials, chosen {chosen}; "
           f"ended by {stops} (patience {t.get('stopping_step', 10)})")
    per_seed = r.vals("recall@20")
    if len(per_seed) > 1 and max(per_seed) - min(per_seed) > 0.05:  # say it where the mean hides it
        out += ("; **seeds disagree**: R@20 " + " / ".join(f"{v:.4f}" for v in per_seed) + " at best epochs "
                + " / ".join(fmt_epoch(v) for v in r.values.get("best_epoch", [])))
    return out


def main_table(ds: str, protocol: str, rows: list[Row], ref: Row | None, tests: dict) -> list[str]:
    shown = [r for r in rows if not r.is_ablation and is_compared(r)]
    out = caption(ds, protocol, shown, NDCG_TEXT)
    out.append("- Values: test metrics, mean ± sample std (ddof 1) over seeds; ΔR@20 / ΔN@20 = JNSKR ÷ row − 1 "
               "(positive: JNSKR better; negative: the row beats JNSKR; JNSKR = our JNSKR row under this protocol, "
               "mean over seeds; NDCG: the standard variant where both rows have it, else the legacy one); `**`: "
               "paired t-test over users p < 0.01 (see the significance table).  s/epoch = mean training seconds "
               "per epoch; s to best = training seconds until the best epoch (RecBole: Σ `epochs[].train_seconds`, "
               "validation excluded).")
    out.append("- Only rows that meet the [fair protocol](#fair-protocol-for-peers) are here (peers: tuned on "
               f"validation, ended by early stopping).  Peer runs that do not are listed below as \"{NOT_COMPARED}\", "
               "without Δ or significance.")
    out.append(TIMING_NOTE)
    if any(r.source == SRC_PAPER for r in shown):
        out.append(f"- `{SRC_PAPER}`: the published numbers (NDCG = legacy variant only; the paper marks JNSKR's "
                   "gains over every baseline with ** p < 0.01).  Their ΔN@20 uses our legacy NDCG.  They are the "
                   "authors' own tuned runs under the paper's protocol, quoted as they stand.")
    if any(r.source == SRC_PORT for r in shown):
        out.append(f"- `{SRC_PORT}`: liulu1998/JNSKR-pytorch's reported recall (not authoritative; its NDCG is "
                   "not comparable and left out).")
    out.append("")
    header = ["Source", "Model", "Seeds", "Recall@20", "NDCG@20", "NDCG@20 legacy", "s/epoch", "best epoch",
              "s to best", "ΔR@20", "ΔN@20", "Note"]
    lines = []
    for r in shown:
        if r is ref:
            dr, dn, dn_s = None, None, ""
        else:
            dr = delta(ref.mean("recall@20"), r.mean("recall@20")) if ref else None
            dn, dn_s = ndcg_delta(ref, r)
        t = tests.get(tests_key(r), {})
        star_r, star_n = _star(t.get("recall@20")), _star(t.get("ndcg@20"))
        name = f"**{r.model}**" if r is ref else r.model
        note = [n for n in (r.note, _tuning_note(r) if r.source == SRC_RECBOLE else "") if n]
        if dr is not None and dr < 0:
            note.append("**beats JNSKR on Recall@20**")
        pr, pn = t.get("recall@20"), t.get("ndcg@20")
        if (pr and pn and pr.p_t is not None and pn.p_t is not None and pr.p_t >= SIG_LEVEL
                and pn.p_t >= SIG_LEVEL):
            note.append(f"**level with JNSKR**: no significant difference (p {pr.p_t:.2f} / {pn.p_t:.2f})")
        lines.append([r.source, name, seeds_text(r), fmt_ms(r, "recall@20"), fmt_ms(r, "ndcg@20"),
                      fmt_ms(r, "ndcg_kgat@20"), fmt_num(r.mean("seconds_per_epoch")), fmt_epoch(r.mean("best_epoch")),
                      fmt_num(r.mean("seconds_to_best_epoch")), fmt_delta(dr) + star_r,
                      fmt_delta(dn, dn_s) + (star_n if not dn_s else ""), "; ".join(note)])
    out += md_table(header, lines)
    return out


def not_compared_table(ds: str, protocol: str, rows: list[Row]) -> list[str]:
    """Peer runs that do not meet the fair protocol: their numbers, why, and no Δ or significance."""
    nc = [r for r in rows if not is_compared(r)]
    if not nc:
        return []
    out = [f"Peer runs shown for the record only: **{NOT_COMPARED}** ({DATASET_TITLES.get(ds, ds)}, protocol "
           f"{protocol}).  They ran at RecBole's defaults, not tuned on validation, and/or were ended by a wall-clock "
           "budget while still improving (or, where the Status says so, were superseded by a longer-patience "
           "tuning), so their figures are lower bounds for RecBole, not RecBole's quality.  No Δ and no "
           "significance test is computed against them.", ""]
    if any(r.source == SRC_README for r in nc):
        out += [f"- `{SRC_README}`: test figures from {RECBOLE_EARLIER_SOURCE}; only s/epoch, Recall@20 and "
                "NDCG@20 were recorded.", ""]
    header = ["Source", "Model", "Seeds", "Recall@20", "NDCG@20", "s/epoch", "best epoch", "epochs run", "stopped by",
              "Status"]
    lines = []
    for r in nc:
        stops = ", ".join(sorted({str(run.get("stopped_by")) for run in r.runs})) or DASH
        lines.append([r.source, r.model, seeds_text(r), fmt_ms(r, "recall@20"), fmt_ms(r, "ndcg@20"),
                      fmt_num(r.mean("seconds_per_epoch")), fmt_epoch(r.mean("best_epoch")),
                      fmt_epoch(r.mean("epochs_run")), stops, f"{NOT_COMPARED}: {peer_status(r)[1]}"])
    return out + md_table(header, lines) + [""]


def significance_table(ds: str, protocol: str, rows: list[Row], ref: Row, tests: dict) -> list[str]:
    out = [f"Paired tests over users, JNSKR vs each in-house baseline and each compared peer "
           f"({DATASET_TITLES.get(ds, ds)}, protocol {protocol}, test set, standard NDCG): per-user values averaged "
           "over the seeds both models have (a peer from another framework: each side over its own seeds), then "
           "paired by user id; `scipy.stats.ttest_rel` and `scipy.stats.wilcoxon` (two-sided); `**`: p < 0.01.  "
           f"Peers marked \"{NOT_COMPARED}\" are not tested.",
           ""]
    header = ["Baseline", "Seeds paired", "Users", "Metric", "JNSKR", "Baseline value", "Δ", "p (paired t)",
              "p (Wilcoxon)"]
    lines = []
    for r in rows:
        if r is ref or tests_key(r) not in tests:
            continue
        label = r.model if r.source == SRC_JNSKR else f"{r.model} ({r.source})"
        for metric, name in (("recall@20", "Recall@20"), ("ndcg@20", "NDCG@20")):
            p = tests.get(tests_key(r), {}).get(metric)
            if p is None:
                lines.append([label, DASH, DASH, name, DASH, DASH, DASH, DASH, "no shared seed or per-user data"])
                continue
            lines.append([label, ", ".join(map(str, p.seeds)), str(p.n_users), name, fmt(p.ref_mean),
                          fmt(p.other_mean), fmt_delta(delta(p.ref_mean, p.other_mean)), fmt_p(p.p_t), fmt_p(p.p_w)])
    return out + md_table(header, lines)


def ablation_table(ds: str, protocol: str, rows: list[Row], ref: Row, tests: dict) -> list[str]:
    abl = [r for r in rows if r.is_ablation]
    abl.sort(key=lambda r: (r.model != SAMPLED, r.model))
    out = caption(ds, protocol, [ref] + abl, NDCG_TEXT)
    out.append(f"- `{SAMPLED}` is the paper's central ablation: the same model trained with negative sampling "
               "(BPR on the CF part, one sampled tail per fact for the KG loss).  Δ = JNSKR ÷ row − 1; p: paired "
               "t-test over users (`**` p < 0.01).")
    out.append(TIMING_NOTE)
    out.append("")
    header = ["Variant", "Overrides (variants: those not in JNSKR's)", "Seeds", "Recall@20", "NDCG@20",
              "NDCG@20 legacy", "s/epoch", "best epoch",
              "s to best", "ΔR@20", "ΔN@20", "p R@20", "p N@20"]
    lines = []
    for r in [ref] + abl:
        t = tests.get(tests_key(r), {})
        pr, pn = t.get("recall@20"), t.get("ndcg@20")
        dn, dn_s = ndcg_delta(ref, r) if r is not ref else (None, "")
        lines.append([f"**{r.model}**" if r is ref else r.model,
                      (", ".join(f"`{o}`" for o in r.overrides) or DASH) if r is ref else
                      (", ".join(f"`{o}`" for o in r.overrides if o not in ref.overrides) or "(same)"),
                      seeds_text(r),
                      fmt_ms(r, "recall@20"), fmt_ms(r, "ndcg@20"), fmt_ms(r, "ndcg_kgat@20"),
                      fmt_num(r.mean("seconds_per_epoch")), fmt_epoch(r.mean("best_epoch")),
                      fmt_num(r.mean("seconds_to_best_epoch")),
                      fmt_delta(delta(ref.mean("recall@20"), r.mean("recall@20"))) if r is not ref else DASH,
                      fmt_delta(dn, dn_s), fmt_p(pr.p_t) if pr else DASH, fmt_p(pn.p_t) if pn else DASH])
    return out + md_table(header, lines)


def sparsity_table(ds: str, protocol: str, rows: list[Row]) -> list[str]:
    """Per-group test Recall@20; one table per distinct set of group edges."""
    by_edges: dict = defaultdict(list)
    for r in rows:
        if r.source != SRC_JNSKR:
            continue
        per_edges: dict = defaultdict(list)
        for run in r.runs:
            g = run.get("groups") or {}
            edges, rec = g.get("edges"), g.get("recall@20")
            if not edges or not rec or len(edges) != len(rec):
                continue
            per_edges[json.dumps(edges)].append((g.get("n_users"), rec))
        for e, lst in per_edges.items():
            by_edges[e].append((r, lst))
    out = []
    for e in sorted(by_edges):
        edges = json.loads(e)
        entries = by_edges[e]
        n_users = next((nu for _, lst in entries for nu, _ in lst if nu), None)
        header = ["Model", "Seeds"] + [
            f"G{i + 1}: {lo}–{hi} interactions" + (f" ({n_users[i]} users)" if n_users and i < len(n_users) else "")
            for i, (lo, hi) in enumerate(edges)]
        lines = []
        for r, lst in entries:
            arr = np.array([rec for _, rec in lst], dtype=float)
            cells = []
            for j in range(arr.shape[1]):
                col = arr[:, j]
                cells.append(f"{col.mean():.4f} ± {col.std(ddof=1):.4f}" if len(col) > 1 else f"{col.mean():.4f}")
            lines.append([r.model, str(len(lst))] + cells)
        out += [f"Test Recall@20 per sparsity group ({DATASET_TITLES.get(ds, ds)}, protocol {protocol}; KGAT's "
                "split of the test users by number of interactions (train + test) into groups of about equal "
                "total interactions; mean ± std over seeds).", ""]
        out += md_table(header, lines) + [""]
    return out


def reproduction_table(ds: str, rows: list[Row]) -> list[str]:
    """Our paper-protocol runs of models that are in the paper's table, next to the paper's row."""
    paper = PAPER_TABLE2.get(ds, {})
    mine = [r for r in rows if r.source == SRC_JNSKR and r.model in paper]
    if not mine:
        return []
    keys = [("recall@10", "R@10"), ("recall@20", "R@20"), ("recall@40", "R@40"),
            ("ndcg_kgat@10", "N@10 leg."), ("ndcg_kgat@20", "N@20 leg."), ("ndcg_kgat@40", "N@40 leg.")]
    out = [f"Our runs under protocol paper next to the paper's rows ({ds}; NDCG = the legacy variant, as in the "
           "paper; Δ = ours ÷ paper − 1).", ""]
    lines = []
    for r in mine:
        lines.append([f"{r.model} (ours, {len(r.seeds)} seed{'s' if len(r.seeds) != 1 else ''})"]
                     + [fmt_ms(r, k) for k, _ in keys])
        lines.append([f"{r.model} (paper)"] + [fmt(paper[r.model].get(k)) for k, _ in keys])
        lines.append(["Δ ours vs paper"] + [fmt_delta(delta(r.mean(k), paper[r.model].get(k))) for k, _ in keys])
    return out + md_table(["Row"] + [n for _, n in keys], lines) + [""]


def paper_only_table(ds: str) -> list[str]:
    keys = ["recall@10", "recall@20", "recall@40", "ndcg_kgat@10", "ndcg_kgat@20", "ndcg_kgat@40"]
    out = [f"The paper's Table 2 for {ds} (NDCG = legacy variant; transcribed in `bench/paper.py`):", ""]
    lines = [[m] + [fmt(v.get(k)) for k in keys] for m, v in PAPER_TABLE2[ds].items()]
    return out + md_table(["Model", "R@10", "R@20", "R@40", "N@10", "N@20", "N@40"], lines) + [""]
