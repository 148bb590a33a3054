"""bench.report (python -m bench.report): a tiny fake results tree -> docs/results.md + PNGs with the expected numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench import common, report
from bench.report import load, tables

pytest.importorskip("matplotlib")
stats = pytest.importorskip("scipy.stats")

N_USERS = 40
# model -> seed -> test recall@20 / ndcg@20 (the per-user values are built to average to them)
TEST = {
    "JNSKR": {1: (0.30, 0.36), 2: (0.32, 0.38)},
    "ENMF": {1: (0.26, 0.31), 2: (0.27, 0.33)},
}


def _per_user(model: str, seed: int, mean: float, metric: str) -> list[float]:
    rng = np.random.default_rng([len(model), seed, len(metric)])
    v = rng.uniform(0.0, 2 * mean, N_USERS)
    return list(v - v.mean() + mean)  # exact mean, so test[...] matches the per-user average


def _jnskr_run(model: str, seed: int) -> dict:
    rec, ndcg = TEST[model][seed]
    return {
        "framework": "jnskr", "dataset": "ml-100k", "model": model, "seed": seed, "protocol": "standard",
        "overrides": [],
        "machine": {"cpu": "Test CPU", "cpu_count": 2, "torch": "2.13.0+cpu", "torch_threads": 1, "device": "cpu"},
        "test": {"recall@20": rec, "ndcg@20": ndcg, "ndcg_kgat@20": ndcg + 0.05, "recall@10": rec / 2},
        "valid": {"recall@20": rec / 2},
        "best_epoch": 20 + seed, "epochs_run": 30, "seconds_per_epoch": 1.5, "train_seconds": 45.0,
        "seconds_to_best_epoch": 1.5 * (20 + seed),
        "curve": [{"epoch": e, "seconds": 1.5 * e, "valid_recall@20": rec / 2 * (1 - math.exp(-e / 8))}
                  for e in range(5, 31, 5)],
        # users listed in a different order per seed: the report must pair by id
        "per_user": {"users": list(range(N_USERS))[::1 if seed == 1 else -1],
                     "recall@20": _per_user(model, seed, rec, "recall")[::1 if seed == 1 else -1],
                     "ndcg@20": _per_user(model, seed, ndcg, "ndcg")[::1 if seed == 1 else -1]},
        "groups": {"edges": [[1, 30], [31, 500]], "n_users": [25, 15], "recall@20": [rec - 0.05, rec + 0.04]},
    }


def _recbole_run(model: str = "BPR", tuned: bool = True, stopped_by: str = "early_stopping",
                 recall: float = 0.2468) -> dict:
    tuning = {"n_trials": 2, "chosen": {"learning_rate": 0.01},
              "trials": [{"params": {"learning_rate": 0.01}, "valid_recall@20": 0.12, "stopped_by": "early_stopping",
                          "epochs_run": 4},
                         {"params": {"learning_rate": 0.001}, "valid_recall@20": 0.10, "stopped_by": "early_stopping",
                          "epochs_run": 9}]} if tuned else None
    return {
        "dataset": "ml100k-kgat", "model": model, "tag": "tuned" if tuned else "", "seed": 2020,
        "framework": "recbole",
        "test": {"recall@20": recall, "ndcg@20": 0.2975}, "valid": {"recall@20": 0.12},
        "best_epoch": 3, "epochs_run": 4, "seconds_per_epoch": 0.5, "seconds_to_best_epoch": 2.0,
        "stopped_by": stopped_by, "error": None, "budget_seconds": 300.0 if stopped_by == "budget" else None,
        "tuning": tuning,
        "per_user": {"users": list(range(N_USERS)), "recall@20": _per_user(model, 2020, recall, "recall"),
                     "ndcg@20": _per_user(model, 2020, 0.2975, "ndcg")},
        "machine": {"cpu": "Test CPU", "cpu_count": 2}, "threads": {"torch": 1, "nice": 19},
        "versions": {"recbole": "1.2.1", "torch": "2.13.0+cpu"},
        "epochs": [{"epoch": e, "train_seconds": 0.5, "valid_seconds": 0.2, "end_seconds": 0.7 * e,
                    "valid_score": 0.03 * e} for e in range(1, 5)],
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    results, out = root / "results", root / "docs"
    for model in TEST:
        for seed in TEST[model]:
            if seed == 2:  # per-user values in the gzip sidecar, as bench/compare.py writes them now
                common.write_run(f"runs/ml-100k/{model}-s{seed}", _jnskr_run(model, seed), root=results)
                continue
            p = results / "runs" / "ml-100k" / f"{model}-s{seed}.json"  # inline, as older runs have them
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(_jnskr_run(model, seed)))
    (results / "recbole").mkdir(parents=True)
    (results / "recbole" / "ml100k-kgat-BPR-tuned-s2020.json").write_text(json.dumps(_recbole_run()))
    # an untuned, budget-stopped peer (as the RecBole runs at defaults under a 300 s budget were)
    (results / "recbole" / "ml100k-kgat-KGAT-s2020.json").write_text(
        json.dumps(_recbole_run("KGAT", tuned=False, stopped_by="budget", recall=0.2100)))
    # tuned but stopped by a budget: still not compared
    (results / "recbole" / "ml100k-kgat-CKE-s2020.json").write_text(
        json.dumps(_recbole_run("CKE", tuned=True, stopped_by="budget", recall=0.2200)))
    assert report.main(["--results", str(results), "--out", str(out)]) == 0
    return report, results, out, (out / "results.md").read_text()


def test_mean_std_and_delta(built):
    _, _, _, md = built
    # JNSKR Recall@20 over seeds 1, 2: mean 0.31, sample std |0.30 - 0.32| / sqrt(2) = 0.014142
    assert "0.3100 ± 0.0141" in md
    assert "0.3700 ± 0.0141" in md  # NDCG@20
    assert "0.2650 ± 0.0071" in md  # ENMF Recall@20
    # delta of JNSKR vs ENMF on Recall@20: 0.31 / 0.265 - 1 = +17.0%
    assert f"{(0.31 / 0.265 - 1) * 100:+.1f}%" == "+17.0%"
    enmf_line = next(line for line in md.splitlines() if line.startswith("| jnskr | ENMF |"))
    assert "+17.0%" in enmf_line
    # the RecBole peer (ml100k-kgat shown under ml-100k) and its delta
    bpr_line = next(line for line in md.splitlines() if line.startswith("| RecBole | BPR (tuned) |"))
    assert "0.2468" in bpr_line and f"{(0.31 / 0.2468 - 1) * 100:+.1f}%" in bpr_line
    assert "tuned on validation: 2 trials" in bpr_line
    assert "ml-100k (= ml100k-kgat)" in md
    # protocol, NDCG variant, seeds and machine stated; no invented values
    assert "**protocol** standard" in md and "standard variant" in md
    assert "jnskr 1, 2" in md and "Test CPU, 2 cores, 1 torch thread(s)" in md
    # the reference numbers: README's RecBole figures and the paper's table
    assert "RecBole (earlier run, README)" in md and "0.3310" in md
    assert "0.1472" in md and "0.0998" in md


def test_p_values_match_scipy(built):
    report, _, _, md = built

    def user_means(model, metric):
        runs = [_jnskr_run(model, s) for s in (1, 2)]
        per = [dict(zip(r["per_user"]["users"], r["per_user"][metric])) for r in runs]
        return np.array([np.mean([d[u] for d in per]) for u in range(N_USERS)])

    for metric in ("recall@20", "ndcg@20"):
        a, b = user_means("JNSKR", metric), user_means("ENMF", metric)
        p_t = stats.ttest_rel(a, b).pvalue
        p_w = stats.wilcoxon(a, b).pvalue
        name = "Recall@20" if metric == "recall@20" else "NDCG@20"
        line = next(line for line in md.splitlines() if line.startswith(f"| ENMF | 1, 2 | 40 | {name} |"))
        assert tables.fmt_p(p_t) in line and tables.fmt_p(p_w) in line
    assert tables.fmt_p(0.004) == "0.004 **" and tables.fmt_p(0.2) == "0.200" and tables.fmt_p(None) == "–"


def test_sparsity_and_plots(built):
    _, _, out, md = built
    assert "G1: 1–30 interactions (25 users)" in md
    assert "0.2600 ± 0.0141" in md  # JNSKR group 1: mean(0.25, 0.27)
    pngs = sorted((out / "img").glob("results-*.png"))
    names = {p.name for p in pngs}
    assert {"results-ml-100k-standard-curves.png", "results-ml-100k-standard-bars.png"} <= names
    for p in pngs:
        assert p.stat().st_size > 5_000, p
        assert f"img/{p.name}" in md


def test_deterministic_and_empty(built, tmp_path):
    report, results, out, md = built
    again = tmp_path / "again"
    report.main(["--results", str(results), "--out", str(again)])
    assert (again / "results.md").read_text() == md
    for p in (out / "img").glob("results-*.png"):
        assert (again / "img" / p.name).read_bytes() == p.read_bytes(), p.name
    # no results at all: the published numbers only, no crash
    report.main(["--results", str(tmp_path / "none"), "--out", str(tmp_path / "empty"), "--no-plots"])
    empty = (tmp_path / "empty" / "results.md").read_text()
    assert "No measured runs" in empty and "0.1558" in empty and not (tmp_path / "empty" / "img").exists()


def test_untuned_or_truncated_peers_are_not_compared(built):
    """Issue 19: Δ and significance only against peers tuned on validation and ended by early stop."""
    report, _, _, md = built
    lines = md.splitlines()
    kgat = [line for line in lines if line.startswith("| RecBole | KGAT |")]
    cke = [line for line in lines if line.startswith("| RecBole | CKE (tuned) |")]
    assert len(kgat) == 1 and len(cke) == 1  # shown once each, in the not-compared table
    for line in kgat + cke:
        assert load.NOT_COMPARED in line
        assert "%" not in line and "**" not in line  # no Δ, no stars
    assert "not tuned on validation" in kgat[0] and "300 s budget" in kgat[0]
    assert "not tuned" not in cke[0] and "300 s budget" in cke[0]
    readme = [line for line in lines if line.startswith("| RecBole (earlier run, README) |")]
    assert readme and all(load.NOT_COMPARED in line and "%" not in line for line in readme)
    # the significance table has the tuned peer, paired across frameworks, and never the others
    sig = [line for line in lines if line.startswith("| BPR (tuned) (RecBole) |")]
    assert len(sig) == 2 and "1, 2 vs 2020" in sig[0]
    assert not any(line.startswith(("| KGAT (RecBole)", "| CKE (tuned) (RecBole)")) for line in lines)
    assert "## Fair protocol for peers" in md and "not run:" in md


def test_peer_status_rules():
    row = load.Row(load.SRC_RECBOLE, "X", "standard", [1], [_recbole_run()])
    assert load.peer_status(row) == (True, "")
    row.runs = [_recbole_run(tuned=False)]
    assert load.peer_status(row)[0] is False
    row.runs = [_recbole_run(), {**_recbole_run(), "stopped_by": "terminated"}]
    assert load.peer_status(row)[0] is False
    row.runs = [{**_recbole_run(), "error": "boom"}]
    assert load.peer_status(row)[0] is False
    assert load.peer_status(load.Row(load.SRC_JNSKR, "ENMF", "standard"))[0] is True


def test_shorter_patience_is_superseded():
    """A peer tuned again with a longer patience: the shorter-patience row is no longer compared."""
    short = load.Row(load.SRC_RECBOLE, "ENMF (tuned)", "standard", [2020], [_recbole_run("ENMF")])
    run = _recbole_run("ENMF")
    run["tuning"] = {**run["tuning"], "stopping_step": 30}
    long_ = load.Row(load.SRC_RECBOLE, "ENMF (tuned-p30)", "standard", [2020], [run])
    load.mark_superseded([short, long_])
    assert load.is_compared(long_) and not load.is_compared(short)
    assert "superseded by ENMF (tuned-p30)" in load.peer_status(short)[1]
