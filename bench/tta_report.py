"""The time-to-accuracy section of docs/results.md, from bench/results/tta/*.json.

`bench/tta.py` writes one JSON per dataset (curves of test Recall@20 against training seconds,
side by side with implicit's ALS and BPR), `bench/whole.py` the whole-command timings and
`bench/contention.py` the busy-machine ratios.  `section(out, plots)` returns Markdown lines;
`bench.report` appends them to docs/results.md.

    python -m bench.tta_report          # print the section
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "tta"
DASH = "–"


def _f(v, digits: int = 4) -> str:
    return DASH if v is None else f"{v:.{digits}f}"


def _load(p: Path) -> dict | None:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def _machine(d: dict) -> str:
    m = d.get("machine", {})
    load = ""
    if "load_average_1min_start" in d:
        load = f", load average {d['load_average_1min_start']:.1f} → {d.get('load_average_1min_end', 0):.1f}"
    return f"{m.get('cpu', '?')}, commit {m.get('commit', '?')}{load}"


def tta_tables(out: Path) -> list[str]:
    lines: list[str] = []
    for p in sorted(RESULTS.glob("*.json")):
        if p.name.startswith(("whole-", "contention")):
            continue
        d = _load(p)
        if not d or "table" not in d:
            continue
        budgets = d.get("budgets_seconds", [])
        ds = d.get("dataset", p.stem)
        lines += [f"### {ds}", "",
                  f"Best test Recall@20 reachable within T seconds of training (evaluation excluded), every "
                  f"method trained on all of train with hyper-parameters chosen on validation; {_machine(d)}. "
                  f"[{p.name}]({os.path.relpath(p, out)})", ""]
        head = ["method"] + [f"T={b}s" for b in budgets] + ["best", "seconds to best"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in d["table"]:
            cells = [r["method"]] + [_f(r.get(f"T={b}s")) for b in budgets]
            cells += [_f(r.get("best")), _f(r.get("seconds_to_best"), 2)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        img = out / "img" / f"tta-{ds}.png"
        if img.is_file():
            lines += [f"![test Recall@20 against training seconds, {ds}]({os.path.relpath(img, out)})", ""]
    return lines


def _short(cmd: str) -> str:
    """The command with the machine's data folder written as ../shared/data (as in the docs)."""
    return " ".join("../shared/data/" + Path(w).name if "/shared/data/" in w else w for w in cmd.split())


def whole_tables(out: Path) -> list[str]:
    lines: list[str] = []
    for p in sorted(RESULTS.glob("whole-*.json")):
        d = _load(p)
        if not d or "row" not in d:
            continue
        r = d["row"]
        lines += [f"Whole commands, start to exit, median of {len(d.get('jnskr_walls', []))} alternating runs "
                  f"({d.get('dataset', '?')}; {_machine(d)}; [{p.name}]({os.path.relpath(p, out)})); jnskr's metrics "
                  "scored from `jnskr recommend RUN --all --k 100`:", "",
                  "| command | wall seconds | training seconds | test Recall@20 | test NDCG@20 |", "|---|---|---|---|---|",
                  f"| `{_short(d['commands']['jnskr'].split(';')[0])}` | {_f(r['jnskr_train_wall_s'], 2)} | "
                  f"{_f(r['jnskr_train_seconds'], 2)} | {_f(r['jnskr_recall@20'])} | {_f(r['jnskr_ndcg@20'])} |",
                  f"| `{d['commands']['als']}` | {_f(r['implicit_als_wall_s'], 2)} | {_f(r.get('als_fit_s'), 2)} | "
                  f"{_f(r.get('als_recall@20'))} | {_f(r.get('als_ndcg@20'))} |", "",
                  f"Ratio jnskr / ALS: whole process {r['ratio']:.1f}×, training alone {r['train_ratio']:.1f}×.", ""]
    return lines


def contention_table(out: Path) -> list[str]:
    p = BENCH / "results" / "contention-cpu.json"
    d = _load(p) if p.is_file() else None
    if not d or not d.get("rows"):
        return []
    lines = [f"Busy machine (`bench/contention.py`: `jnskr train` beside spinning PyTorch processes; {_machine(d)}; "
             f"[{p.name}]({os.path.relpath(p, out)})):", "",
             "| setting | quiet seconds | busy seconds | busy / quiet |", "|---|---|---|---|"]
    for r in d["rows"]:
        lines.append(f"| {r['setting']} | {_f(r.get('quiet_seconds'), 2)} | {_f(r.get('busy_seconds'), 2)} | "
                     f"{_f(r.get('ratio'), 1)}× |")
    return lines + [""]


def section(out: Path, plots: bool = True) -> list[str]:
    body = tta_tables(out) + whole_tables(out) + contention_table(out)
    if not body:
        return []
    return ["## Time to accuracy against implicit", "",
            "`bench/tta.py`, `bench/whole.py`, `bench/contention.py`; every figure paired with its peer "
            "in the same run.", ""] + body


if __name__ == "__main__":
    sys.stdout.write("\n".join(section(BENCH.parent / "docs")) + "\n")
