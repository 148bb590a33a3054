"""The bench package layout: `bench.report`'s pieces on tiny inputs with known answers, and the
bench scripts run as modules (``python -m bench.<name>`` from the repository root) with no
``sys.path`` edits.  Run from the repository root (``python -m pytest``), as the bench scripts are."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import load, stats, tables
from bench.report.load import SRC_JNSKR, SRC_RECBOLE, Row

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"


def _row(model: str, seeds: list, users: list[list[int]], values: list[list[float]], source=SRC_JNSKR) -> Row:
    runs = [{"per_user": {"users": u, "recall@20": v}} for u, v in zip(users, values)]
    return Row(source, model, "standard", seeds, runs)


def test_row_mean_and_sample_std():
    r = Row(SRC_JNSKR, "JNSKR", "standard", values={"recall@20": [0.30, 0.32, None, float("nan")]})
    assert r.mean("recall@20") == pytest.approx(0.31)
    assert r.std("recall@20") == pytest.approx(0.02 / math.sqrt(2))  # ddof 1; None and NaN dropped
    assert tables.fmt_ms(r, "recall@20") == "0.3100 ± 0.0141"
    assert r.mean("ndcg@20") is None and tables.fmt_ms(r, "ndcg@20") == "–"


def test_delta_and_formatting():
    assert stats.delta(0.31, 0.265) == pytest.approx(0.31 / 0.265 - 1)
    assert tables.fmt_delta(stats.delta(0.31, 0.265)) == "+17.0%"
    assert stats.delta(0.2, 0.0) is None and stats.delta(None, 0.3) is None
    assert [tables.fmt_num(v) for v in (None, 0, 0.012345, 1.2345, 12.345, 123.45)] == \
        ["–", "0", "0.0123", "1.23", "12.3", "123"]
    assert tables.fmt_p(0.0004) == "4.0e-04 **" and tables.fmt_p(0.05) == "0.050"
    assert tables.md_table(["a", "b"], [["x|y", "1"]]) == ["| a | b |", "|---|---|", "| x\\|y | 1 |"]


def test_per_user_means_pair_users_by_id_over_shared_seeds():
    # seed 1 lists the users in another order than seed 2; user 9 is missing under seed 2
    r = _row("JNSKR", [1, 2, 3], [[0, 1, 9], [1, 0], [0, 1]], [[0.2, 0.4, 1.0], [0.6, 0.0], [5.0, 5.0]])
    assert stats.per_user_means(r, [1, 2], "recall@20") == pytest.approx({0: 0.1, 1: 0.5})
    assert stats.per_user_means(r, [], "recall@20") == {}


def test_paired_test_known_answer():
    # every user gains 1, 2, 3 or 4 over the baseline: Wilcoxon's exact two-sided p is 2 / 2**4, and
    # the paired t statistic is mean / (sd / sqrt(n)) = 2.5 / (sqrt(5 / 3) / 2)
    scipy_stats = pytest.importorskip("scipy.stats")
    users = [[10, 11, 12, 13]]
    ref = _row("JNSKR", [1], users, [[1.0, 2.0, 3.0, 4.0]])
    other = _row("ENMF", [1], users, [[0.0, 0.0, 0.0, 0.0]])
    p = stats.paired_test(ref, other, "recall@20")
    assert (p.seeds, p.n_users, p.ref_mean, p.other_mean) == ([1], 4, 2.5, 0.0)
    assert p.p_w == pytest.approx(0.125)
    t = 2.5 / (math.sqrt(5 / 3) / 2)
    assert p.p_t == pytest.approx(2 * scipy_stats.t.sf(t, df=3))
    # no shared seed: no test; identical values: no p-values, but the pairing still stands
    assert stats.paired_test(ref, _row("ENMF", [2], users, [[0.0] * 4]), "recall@20") is None
    same = stats.paired_test(ref, ref, "recall@20")
    assert same.n_users == 4 and same.p_t is None and same.p_w is None
    # a peer from another framework: its own seeds, paired by user id
    peer = _row("BPR", [2020], users, [[0.0] * 4], source=SRC_RECBOLE)
    own = stats.paired_test_own_seeds(ref, peer, "recall@20")
    assert own.seeds == ["1 vs 2020"] and own.p_w == pytest.approx(0.125)


def test_reference_row_prefers_more_seeds_then_fewer_overrides():
    a = Row(SRC_JNSKR, "JNSKR [x=1]", "standard", seeds=[1, 2, 3], overrides=["x=1"])
    b = Row(SRC_JNSKR, "JNSKR", "standard", seeds=[1])
    c = Row(SRC_JNSKR, "JNSKR-sampled", "standard", seeds=[1, 2, 3, 4])
    d = Row(SRC_JNSKR, "JNSKR", "standard", seeds=[1, 2, 3])
    assert stats.reference_row([b, c, a]) is a and c.is_ablation  # never the sampled variant
    assert stats.reference_row([a, d]) is d  # same seeds: fewer overrides
    assert stats.reference_row([c]) is None
    assert load.canonical_dataset("ml100k-kgat") == "ml-100k"
    assert load.config_key({"overrides": ["seed=3", "b=2", "a=1"], "preset": "p"}) == ("a=1", "b=2", "preset=p")


def test_bench_runs_as_modules_from_the_repo_root():
    for module, expect in (("bench.report", "usage: python -m bench.report"), ("bench.compare", "usage:")):
        r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(expect), r.stdout


def _sys_path_edits(path: Path) -> list[int]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and ast.unparse(node.func).startswith("sys.path."):
            out.append(node.lineno)
    return out


def test_no_sys_path_edits_and_small_report_modules():
    """The package layout replaces the path edits (the peers under bench/peers/ run in their own
    environments and stay scripts); the report's modules stay under 400 lines each (issue 18)."""
    edits = {p.name: _sys_path_edits(p) for p in sorted(BENCH.glob("*.py")) + sorted(BENCH.glob("report/*.py"))}
    assert {name: lines for name, lines in edits.items() if lines} == {}
    sizes = {p.name: len(p.read_text().splitlines()) for p in (BENCH / "report").glob("*.py")}
    assert {"__init__.py", "__main__.py", "load.py", "stats.py", "tables.py", "plots.py"} <= set(sizes)
    assert max(sizes.values()) < 400, sizes
    assert not (BENCH / "report.py").exists()  # the package, not a module, answers `import bench.report`
