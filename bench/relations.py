"""Do relation types matter?  JNSKR on a KG as given against the same KG with every relation merged
into one, i.e. relation-free item-entity links: all that Amazon-book's `kg_feat.npz` offers here,
where JNSKR reaches Recall@20 0.1548 against the paper's 0.1558 with the relational `kg_final.txt`
(docs/results.md).  Facts that differ only in their relation become one fact.

Protocol paper (test-set epoch selection, Adagrad), as those Amazon-book rows; each dataset's preset;
seeds 1..S; one torch thread.  The difference between the two variants per seed is the measured cost
of losing relation types on data that has them.

    python -m bench.relations [--datasets ml100k-kgat,kgcn-music] [--seeds 3]

Writes bench/results/relations-ablation.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
import jnskr  # noqa: E402,F401  (first, as the CLI: thread and BLAS settings before numpy loads)
import numpy as np  # noqa: E402
from bench.common import SHARED_DATA, machine, print_table, write_result  # noqa: E402

METRICS = ("recall@20", "ndcg@20", "ndcg_kgat@20")


def merged_relations(ds):
    """`ds` with every KG relation replaced by one relation ("linked")."""
    from jnskr.data.arrays import KnowledgeGraph

    kg = ds.kg
    merged = KnowledgeGraph(kg.heads, np.zeros_like(kg.relations), kg.tails, kg.n_entities, 1,
                            relation_names=np.array(["linked"]), entity_ids=kg.entity_ids,
                            entity_names=kg.entity_names)
    return dataclasses.replace(ds, kg=merged, name=f"{ds.name} (relations merged)")


def run_one(ds, preset: str, seed: int) -> dict:
    from jnskr.config import build_config
    from jnskr.pipeline import run

    cfg = build_config(preset, overrides=["train.protocol=paper", f"seed={seed}", "device=cpu", "threads=1"])
    t0 = time.perf_counter()
    res = run(cfg, ds)
    kg = res.item_kg
    return {"seed": seed, "seconds": time.perf_counter() - t0, "best_epoch": res.metrics["best_epoch"],
            "facts": kg.n_facts if kg is not None else 0, "relations": kg.n_relations if kg is not None else 0,
            **{k: res.metrics["test"][k] for k in METRICS}}


def section(results: Path = HERE / "results") -> list[str]:
    """The "Relation types" section of docs/results.md (empty without the JSON)."""
    import json

    path = results / "relations-ablation.json"
    if not path.is_file():
        return []
    d = json.loads(path.read_text())
    m = d["machine"]
    md = ["## Relation types: an ablation for the Amazon-book KG", "",
          "Amazon-book's JNSKR rows use relation-free item-entity links (`kg_feat.npz`); the paper's relational "
          "`kg_final.txt` is not available here.  How much do relation types matter on data that has them?  "
          "JNSKR with the KG as given against the same KG with every relation merged into one (facts that differ "
          "only in their relation become one), protocol paper (test-set epoch selection, Adagrad) as the "
          f"Amazon-book rows, each dataset's preset, seeds 1–{d['seeds']}; {m.get('cpu')}, commit "
          f"{m.get('commit')} (`python -m bench.relations`; "
          "[relations-ablation.json](../bench/results/relations-ablation.json)).", "",
          "| dataset | KG | facts | relations | Recall@20 | NDCG@20 | NDCG@20 legacy |",
          "|---|---|---|---|---|---|---|"]
    for r in d["table"]:
        md.append(f"| {r['dataset']} | {r['variant']} | {r['facts']:,} | {r['relations']} | "
                  + " | ".join(f"{r[k]:.4f} ± {r[k + '_sd']:.4f}" for k in METRICS) + " |")
    md.append("")
    for name, runs in d["runs"].items():
        diff = runs["paired_difference"]["recall@20"]
        md.append(f"- {name}: merged minus given, Recall@20 per seed: "
                  + ", ".join(f"{x:+.4f}" for x in diff) + f" (mean {statistics.mean(diff):+.4f}).")
    md.append("")
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="ml100k-kgat,kgcn-music")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()

    from jnskr.data import load_dataset

    out, rows = {}, []
    for name in args.datasets.split(","):
        ds = load_dataset(SHARED_DATA / name, format="kgat")
        variants = {"relations as given": ds, "relations merged": merged_relations(ds)}
        out[name] = {}
        for label, data in variants.items():
            runs = [run_one(data, name, s) for s in range(1, args.seeds + 1)]
            out[name][label] = runs
            row = {"dataset": name, "variant": label, "facts": runs[0]["facts"], "relations": runs[0]["relations"]}
            for k in METRICS:
                vals = [r[k] for r in runs]
                row[k] = statistics.mean(vals)
                row[f"{k}_sd"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
            rows.append(row)
            print_table(rows[-1:], list(row))
        given, merged = out[name]["relations as given"], out[name]["relations merged"]
        out[name]["paired_difference"] = {k: [m[k] - g[k] for g, m in zip(given, merged)] for k in METRICS}
    print()
    print_table(rows, ["dataset", "variant", "facts", "relations", *METRICS],
                title="JNSKR, protocol paper: KG relations as given vs merged into one (mean over seeds)")
    path = write_result("relations-ablation", {"machine": machine("cpu"), "seeds": args.seeds, "protocol": "paper",
                                               "table": rows, "runs": out})
    print(f"written {path}")


if __name__ == "__main__":
    main()
