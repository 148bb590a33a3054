"""Markdown table of the PyKEEN selections (tune-*.json) in bench/results/kg/pykeen/ (any python).

    python bench/peers/pykeen/table.py [DATASET ...]

One row per (dataset, model, loop): the validation-selected parameters, trials run, the final
run's valid/test both-sides MRR and Hits@1/3/10 at the best-validation epoch, that epoch, the
training seconds (wall and process CPU) to reach it, and how the final run stopped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[3] / "bench" / "results" / "kg" / "pykeen"
SHORT = {"lr": "lr", "reg_weight": "reg", "batch_size": "b", "num_negs": "neg", "label_smoothing": "ls",
         "inverse": "inv"}


def fmt_params(p: dict) -> str:
    return " ".join(f"{SHORT.get(k, k)}={v}" for k, v in sorted(p.items()))


def main(argv: list[str]) -> int:
    rows = []
    for f in sorted(OUT.glob("tune-*.json")):
        d = json.loads(f.read_text())
        if argv and d["dataset"] not in argv:
            continue
        fin = d.get("final") or {}
        v, t = (fin.get("valid_at_best") or {}).get("both", {}), (fin.get("test_at_best") or {}).get("both", {})
        cell = lambda m, k: f"{m[k]:.3f}" if k in m else "–"  # noqa: E731
        rows.append([d["dataset"], d["model"], d["loop"], fmt_params(d["winner"]["params"]) if d["winner"] else "–",
                     f"{len(d['trials'])}/{d['trials_planned']}", f"{d['budget_train_seconds']:.0f}",
                     cell(v, "mrr"), cell(t, "mrr"), cell(t, "hits@1"), cell(t, "hits@3"), cell(t, "hits@10"),
                     str(fin.get("best_epoch", "–")),
                     f"{fin['train_seconds_to_best']:.0f}" if fin.get("train_seconds_to_best") is not None else "–",
                     f"{fin['train_cpu_seconds_to_best']:.0f}" if fin.get("train_cpu_seconds_to_best") is not None
                     else "–", fin.get("stopped_by", "–")])
    head = ["dataset", "model", "loop", "selected (valid)", "trials", "budget cpu-s", "valid MRR", "test MRR",
            "H@1", "H@3", "H@10", "best epoch", "train s to best", "cpu s to best", "stopped by"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" if i < 4 else "---:" for i in range(len(head))) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
