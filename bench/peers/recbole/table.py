"""Print a markdown table of the RecBole results in bench/results/recbole/ (any python 3).

    python bench/peers/recbole/table.py [DATASET ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "results" / "recbole"


def main(argv: list[str]) -> int:
    rows = []
    for f in sorted(RESULTS.glob("*.json")):
        d = json.loads(f.read_text())
        if argv and d["dataset"] not in argv:
            continue
        rows.append(d)
    print("| dataset | model | s/epoch | epochs run | best epoch | s to best | stopped by "
          "| R@20 | N@20 | R@10 | N@10 | R@40 | N@40 | valid R@20 |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    def f(x, spec):
        return "–" if x is None else format(x, spec)

    for d in rows:
        t, v = d.get("test") or {}, d.get("valid") or {}
        name = d["model"] + (f" ({d['tag']})" if d.get("tag") else "")
        cells = [d["dataset"], name, f(d["seconds_per_epoch"], ".2f"), str(d["epochs_run"]),
                 f(d["best_epoch"], "d"), f(d["seconds_to_best_epoch"], ".0f"), d["stopped_by"]]
        cells += [f(t.get(k), ".4f") for k in ("recall@20", "ndcg@20", "recall@10", "ndcg@10", "recall@40", "ndcg@40")]
        cells.append(f(v.get("recall@20"), ".4f"))
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
