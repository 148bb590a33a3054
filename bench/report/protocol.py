"""The "Fair protocol for peers" section (the rules, and the status of each RecBole peer under them) and
the note on our ENMF's gap to the paper's on Amazon-book."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.report.load import DASH, NOT_COMPARED, TRUNCATED_STOPS
from bench.report.tables import fmt_num, md_table


FAIR_PROTOCOL = [
    "Every peer that a Δ or a significance star is computed against must have been run like our own models "
    "(Rendle et al., RecSys 2022; Dacrema et al., RecSys 2019, on what goes wrong otherwise):",
    "",
    "1. **Same validation split.** Hyper-parameters and the best epoch are chosen on the validation split jnskr's "
    "trainer uses (10% of each user's training items, `holdout_split(train, 0.1, seed=2020)`; "
    "`bench/peers/recbole/convert.py` writes exactly that split for RecBole), never on test.",
    "2. **Same number of trials per model**, over the ranges the peer's authors recommend (RecBole: each "
    "model's documented \"Tuning Hyper Parameters\" ranges; implicit: `bench/ials.py`'s shared grid).  A grid with "
    "more points than trials is sampled without replacement with a fixed seed; every trial's setting and "
    "validation score is recorded in the result's `tuning` record.",
    "3. **Training ends by the peer's own early stop on validation** (RecBole: `stopping_step` 10 validations "
    "without improvement) or its epoch cap, **never by a time budget** (`run.py --budget 0`); the result says "
    "which in `stopped_by`.  Where that patience stops some seeds on an early plateau (RecBole's ENMF at "
    "Adam lr 0.01 sits near validation Recall@20 0.20 around epoch 30-45 before rising again), the model is "
    "tuned once more, the same way, with patience 30 (`tune.py --stopping-step 30`); the patience-10 row is "
    "then listed as superseded, not compared.  On the other datasets RecBole's ENMF is tuned with patience 30 "
    "from the start.",
    "4. **3 seeds** of the chosen setting (RecBole: 2020, 2021, 2022; the seed-2020 trial is that run).",
    "5. **The same full-ranking evaluator**: every item ranked, the user's training items masked, Recall / "
    "standard NDCG / Precision / Hit at 10/20/40.  RecBole's evaluator is checked equal to jnskr's on a golden "
    "case and on dumped scores (`bench/peers/recbole/README.md`); per-user test values are recorded so the "
    "paired tests can pair users across frameworks.",
    "",
    f"A peer result without a non-empty `tuning` record, or with `stopped_by` `budget`/`terminated`, is shown "
    f"only as \"{NOT_COMPARED}\": no Δ column, no significance test.  The run for a peer is "
    "`python bench/peers/recbole/tune.py --dataset D --model M --space '{...}'` (6 trials, then the 2 other seeds); "
    "the commands used are in `bench/peers/recbole/README.md`.",
    "",
    "Our own rows: JNSKR and jnskr's ENMF were tuned on the same validation split (`bench/results/tune-*.json`: "
    "10 trials for ENMF on ml-100k, 3 rounds for JNSKR) and stop on validation (patience), 3 seeds.  They had "
    "more trials than the 6 given to each RecBole peer; where a tuned peer comes close, read the margin with "
    "that in mind.",
]

#: peers and datasets the fair protocol covers; each either has a compared result or an estimate
PLAN_MODELS = ["BPR", "ENMF", "LightGCN", "CKE", "CFKG", "KGAT", "KGIN", "RippleNet"]
PLAN_DATASETS = {"ml100k-kgat": 70_672, "kgcn-music": 15_826, "amazon-book": 564_499}  # RecBole train pairs
PLAN_RUNS = 8  # 6 trials + 2 more seeds
PLAN_EPOCHS = 100  # assumed epochs to early stop where no converged run of the model exists


def _recbole_runs(results: Path) -> list[dict]:
    out = []
    for path in sorted((results / "recbole").glob("*.json")):
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and d.get("model") and d.get("dataset"):
            out.append(d)
    return out


def peer_plan_table(results: Path) -> list[str]:
    """One line per (dataset, peer): compared (tuned, converged) or "not run: N hours estimated"."""
    runs = _recbole_runs(results)
    by = defaultdict(list)
    for d in runs:
        by[(d["dataset"], d["model"])].append(d)

    def epoch_cost(ds: str, model: str) -> tuple[float | None, str]:
        """Seconds per epoch, training + validation, single-threaded, and where the figure comes from."""
        own = [d for d in by.get((ds, model), []) if d.get("seconds_per_epoch")]
        if own:
            d = min(own, key=lambda d: d["seconds_per_epoch"])
            return d["seconds_per_epoch"] + (d.get("valid_seconds_per_epoch") or 0.0), f"measured on {ds}"
        base = [d for d in by.get(("ml100k-kgat", model), []) if d.get("seconds_per_epoch")]
        if not base:
            return None, "no epoch measured"
        d = min(base, key=lambda d: d["seconds_per_epoch"])
        scale = PLAN_DATASETS[ds] / PLAN_DATASETS["ml100k-kgat"]
        valid = [x.get("valid_seconds_per_epoch") or 0.0 for x in by.get((ds, "BPR"), [])]
        v = max(valid) if valid else (d.get("valid_seconds_per_epoch") or 0.0) * scale
        return d["seconds_per_epoch"] * scale + v, (f"ml100k-kgat epoch × {scale:.1f} (training pairs)"
                                                    + (f" + {ds} BPR's validation pass" if valid else ""))

    def epochs_needed(model: str) -> tuple[float, str]:
        conv = [d for d in runs if d["model"] == model and d.get("stopped_by") not in TRUNCATED_STOPS
                and d.get("epochs_run") and not d.get("copied_from")]  # a copied trial is counted below
        seen = set()
        for d in runs:  # the trials of a tuned run are converged runs too (each seed's record repeats them)
            for t in ((d.get("tuning") or {}).get("trials") or []) if d["model"] == model else []:
                if (t.get("stopped_by") not in TRUNCATED_STOPS and t.get("epochs_run")
                        and t.get("file", id(t)) not in seen):
                    seen.add(t.get("file", id(t)))
                    conv.append({"epochs_run": t["epochs_run"]})
        if conv:
            return float(np.mean([d["epochs_run"] for d in conv])), f"{len(conv)} converged runs"
        return float(PLAN_EPOCHS), "assumed"

    lines = []
    for ds in PLAN_DATASETS:
        for model in PLAN_MODELS:
            tuned = defaultdict(list)  # tag -> runs
            for d in by.get((ds, model), []):
                if d.get("tuning") and d.get("stopped_by") not in TRUNCATED_STOPS and not d.get("error"):
                    tuned[d.get("tag") or ""].append(d)
            longest = max((g[0]["tuning"].get("stopping_step", 10) for g in tuned.values()), default=None)
            for tag, group in sorted(tuned.items()):
                t = group[0]["tuning"]
                lines.append([ds, f"{model} ({tag})" if tag else model,
                              f"run: {t.get('n_trials')} trials on validation, {len(group)} seed(s), ended by "
                              f"{', '.join(sorted({str(d.get('stopped_by')) for d in group}))} (patience "
                              f"{t.get('stopping_step', 10)})"
                              + ("; superseded by the longer patience, not compared"
                                 if t.get("stopping_step", 10) < longest else ""), DASH, DASH])
            if tuned:
                continue
            cost, cost_src = epoch_cost(ds, model)
            ep, ep_src = epochs_needed(model)
            if cost is None:
                lines.append([ds, model, "not run: no epoch time measured to estimate from", DASH, DASH])
                continue
            hours = PLAN_RUNS * ep * cost / 3600
            lines.append([ds, model, f"not run: {hours:.1f} hours estimated" if hours >= 0.95
                          else f"not run: {hours * 60:.0f} minutes estimated",
                          f"{fmt_num(cost)} s ({cost_src})", f"{ep:.0f} ({ep_src})"])
    head = [f"Status of each RecBole peer under this protocol.  Estimate = {PLAN_RUNS} runs (6 trials + 2 seeds) × "
            "epochs to early stop × seconds per epoch (training + full-ranking validation), one thread on this "
            "2-core machine; epochs to early stop = the mean over this model's converged RecBole runs, or "
            f"{PLAN_EPOCHS} where none exists.  A peer that is not run is not compared: its budget-stopped or "
            "untuned figure is no substitute.", ""]
    return head + md_table(["Dataset", "Peer", "Status", "s per epoch (train + valid)", "epochs to stop"],
                           lines) + [""]


def fair_protocol_section(results: Path) -> list[str]:
    return ["## Fair protocol for peers", ""] + FAIR_PROTOCOL + [""] + peer_plan_table(results)


#: why our ENMF's paper-protocol row on Amazon-book is below the paper's (shown under that table)
ENMF_GAP = [
    "**Why our ENMF is 0.0072 below the paper's on Amazon-book (R@20 0.1400 vs 0.1472; legacy N@20 0.0952 vs "
    "0.0998).**  The ENMF authors' public code and README (chenchongthu/ENMF, `code/ENMF.py`) train with "
    "Adagrad lr 0.05, batches of 256 users, d = 64, dropout keep-probability 0.7, no L2, for **500 epochs**, and "
    "tell users to tune `negative_weight` over {0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5} (smaller for "
    "sparser data) and the keep-probability per dataset.  Our row uses the same model, optimiser, lr, batch, d, "
    "keep-probability and no L2, so the differences are:",
    "",
    "1. **Epochs: 101 against the authors' 500.**  The preset stops at JNSKR's 101 epochs (spec §5).  The test "
    "curve (`runs/amazon-book/ENMF-paper-s1.json`, every 10 epochs) still rises at the end: 0.1382 at epoch 51, "
    "0.1400 at 71 (the row: selected by test Recall@10), 0.1409 at 101, about +0.0003 per 10 epochs over the "
    "last 30.  Held linearly, that rate would reach 0.1472 near epoch 310; the curve is flattening, so the "
    "longer training explains part of the gap, how much is unmeasured.",
    "2. **`negative_weight` 0.01 was chosen on validation after only 40 epochs per trial** "
    "(`tune-amazon-book-enmf.json`: every trial's best epoch was its last, 40, so the search favoured the "
    "setting that rises fastest, not the one that ends highest after 500 epochs).  0.01 beat 0.005 / 0.02 / 0.05 "
    "there by 0.0016-0.0087 validation Recall@20; a weight whose curve starts slower and ends higher is exactly "
    "what such a truncated search misses.  The weight the JNSKR paper (same group as ENMF) used for ENMF is not "
    "recorded here (docs/spec.md §5 lists only JNSKR's settings).",
    "3. **Selection and seeds.** Our row is one seed against the paper's unstated number of runs, and the paper "
    "protocol picks the best of the test evaluations (every 10 epochs: 11 for us, 50 over 500 epochs), so a "
    "longer run also gets more chances at a lucky epoch.  Dropout is not the cause: keep-probability 0.9 beat the "
    "authors' 0.7 by only 0.0004 validation Recall@20 (0.5: −0.0030; `tune-amazon-book-enmf-round2.json`).",
    "",
    "Not closed here: a 500-epoch Amazon-book ENMF run takes about 500 × 6.7 s ≈ 56 min single-threaded on this "
    "machine (about 7.5 h for the authors' 8-point weight grid), over the ~20 minutes this session could give it; "
    "the command is `python -m bench.compare --dataset amazon-book --variants ENMF --seeds 1 --protocol paper "
    "--set train.epochs=500 --set train.eval_every=10` (and `--set enmf.negative_weight=W` for the grid).",
]
