"""Convert a jnskr dataset into RecBole atomic files that carry jnskr's own split.

Run with the PROJECT's python (it imports jnskr), not the RecBole venv:

    python bench/peers/recbole/convert.py /work/shared/data/ml100k-kgat --format kgat
    python bench/peers/recbole/convert.py /work/shared/data/kgcn-music --format kgat

Output (default ``bench/peers/recbole/data/<name>/``, gitignored; never commit it, the data's
licence forbids redistribution):

* ``<name>.train.inter``, ``<name>.valid.inter``, ``<name>.test.inter``: RecBole's
  ``benchmark_filename`` layout.  test = jnskr's test set; train/valid = jnskr's
  ``holdout_split(ds.train, valid_ratio, seed)`` (the trainer's validation split), so RecBole
  selects its best epoch on the same validation users/items that jnskr does.  RecBole trains on
  the train part only (90 % of jnskr's train).  Full-ranking candidates in RecBole are then:
  valid = all items minus the user's train-part items; test = all items minus train+valid
  items, i.e. minus jnskr's whole train set, which is what jnskr's test protocol excludes.
* ``<name>.kg`` (head, relation, tail) and ``<name>.link`` (item -> entity) for KG models.
* ``<name>.meta.json``: counts, the split parameters and what was dropped.

Tokens: users and items are jnskr's dense ids (``0..n-1``), entities are ``e<dense entity
id>``, relations ``r<dense relation id>``.  RecBole remaps tokens to its own ids internally; the
runner needs no mapping back because RecBole evaluates itself.

KG caveats (RecBole 1.2.1 ``KnowledgeBasedDataset``):

1. ``_filter_link`` drops every link whose entity occurs in no triple (and whose item occurs in
   no interaction).  So a ``.link`` row is written only for items whose entity (item i is entity
   i in jnskr) occurs as a head or tail of some triple.
2. Items without a link are dropped from the interactions by the KG models' dataset (the brief's
   "RecBole's KG models drop interactions of items without KG links").  With pre-split
   benchmark files RecBole cuts the concatenated inter table back into train/valid/test by the
   ORIGINAL per-file row counts, so a row dropped after loading would shift the split
   boundaries silently.  Therefore, when some item has no link, this script writes a second
   dataset ``<name>-kglinked`` restricted to linked items (same split otherwise) and the KG
   models must be run on that one; the plain ``<name>`` keeps every interaction (and no KG) for
   the CF models.  When every item is linked (ml100k-kgat, kgcn-music) one dataset serves all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _write_inter(path: Path, users: np.ndarray, items: np.ndarray) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\n")
        for u, i in zip(users.tolist(), items.tolist()):
            f.write(f"{u}\t{i}\n")


def _pairs(inter, keep_item: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    u, i = inter.pairs()
    if keep_item is not None:
        m = keep_item[i]
        u, i = u[m], i[m]
    return u, i


def convert(dataset: str, fmt: str | None, out: Path, name: str | None, valid_ratio: float, seed: int,
            kg: bool = True) -> list[dict]:
    from jnskr.data import load_dataset
    from jnskr.data.split import holdout_split

    ds = load_dataset(dataset, format=fmt, cache=False)
    name = name or ds.name
    train_part, valid_part = holdout_split(ds.train, valid_ratio, seed=seed)
    assert train_part.nnz + valid_part.nnz == ds.train.nnz

    has_kg = kg and ds.kg is not None and ds.kg.n_triples > 0
    linked = None
    if has_kg:
        in_triple = np.zeros(ds.kg.n_entities, dtype=bool)
        in_triple[ds.kg.heads] = True
        in_triple[ds.kg.tails] = True
        linked = in_triple[: ds.n_items].copy()  # item i <-> entity i
    variants = [(name, None, False)]  # (dataset name, item filter, write KG files?)
    if has_kg:
        if linked.all():
            variants = [(name, None, True)]
        else:
            variants = [(name, None, False), (f"{name}-kglinked", linked, True)]

    metas = []
    for vname, keep, write_kg in variants:
        d = out / vname
        d.mkdir(parents=True, exist_ok=True)
        counts = {}
        for part, inter in (("train", train_part), ("valid", valid_part), ("test", ds.test)):
            u, i = _pairs(inter, keep)
            _write_inter(d / f"{vname}.{part}.inter", u, i)
            counts[part] = {"pairs": int(len(u)), "users": int(len(np.unique(u))), "items": int(len(np.unique(i)))}
        meta = {
            "name": vname,
            "source": str(dataset),
            "source_name": ds.name,
            "source_fingerprint": ds.fingerprint() if hasattr(ds, "fingerprint") else None,
            "n_users": ds.n_users,
            "n_items": ds.n_items,
            "valid_split": {"function": "jnskr.data.split.holdout_split", "ratio": valid_ratio, "seed": seed},
            "counts": counts,
            "items_in_some_interaction": int(np.count_nonzero(
                np.bincount(np.concatenate([ds.train.indices, ds.test.indices]), minlength=ds.n_items))),
        }
        if keep is not None:
            meta["dropped_unlinked_items"] = int((~keep).sum())
            meta["dropped_pairs"] = {
                "train": int(ds.train.nnz - counts["train"]["pairs"] - counts["valid"]["pairs"]),
                "test": int(ds.test.nnz - counts["test"]["pairs"]),
            }
        if write_kg:
            g = ds.kg
            with open(d / f"{vname}.kg", "w", encoding="utf-8") as f:
                f.write("head_id:token\trelation_id:token\ttail_id:token\n")
                for h, r, t in zip(g.heads.tolist(), g.relations.tolist(), g.tails.tolist()):
                    f.write(f"e{h}\tr{r}\te{t}\n")
            items = np.flatnonzero(linked)
            with open(d / f"{vname}.link", "w", encoding="utf-8") as f:
                f.write("item_id:token\tentity_id:token\n")
                for i in items.tolist():
                    f.write(f"{i}\te{i}\n")
            meta["kg"] = {
                "triples": int(g.n_triples), "entities": int(g.n_entities), "relations": int(g.n_relations),
                "links": int(len(items)), "unlinked_items": int(ds.n_items - len(items)),
            }
        (d / f"{vname}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        metas.append(meta)
    return metas


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", help="jnskr dataset: a path or a registered/imported name")
    p.add_argument("--format", default=None, help="kgat, recbole, tsv (default: detect)")
    p.add_argument("--name", default=None, help="RecBole dataset name (default: the dataset's name)")
    p.add_argument("--out", type=Path, default=HERE / "data", help="output root (default: %(default)s)")
    p.add_argument("--valid-ratio", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=2020, help="seed of holdout_split (default 2020)")
    p.add_argument("--no-kg", action="store_true", help="write no .kg/.link files")
    a = p.parse_args(argv)
    for meta in convert(a.dataset, a.format, a.out, a.name, a.valid_ratio, a.seed, kg=not a.no_kg):
        print(json.dumps({k: meta[k] for k in ("name", "counts")} | {"kg": meta.get("kg")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
