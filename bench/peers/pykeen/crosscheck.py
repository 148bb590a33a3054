"""PyKEEN's filtered evaluator on externally trained DistMult / ComplEx embeddings (venv python).

    bench/.venv-pykeen/bin/python bench/peers/pykeen/crosscheck.py --dataset nations \
        --model distmult --emb DIR [--out result.json] [--expect run.json]

DIR holds (the same layout run.py --save-embeddings writes):
  entity.npy    [E, d]  (ComplEx: [E, 2d] = [real | imaginary])
  relation.npy  [R, d]  (ComplEx: [R, 2d]); [2R, ...] = reciprocal model, row R + r is the inverse of r
  entities.txt  entity labels, one per line, row i of entity.npy = line i
  relations.txt relation labels, one per line, row r of relation.npy = line r (R lines)
(--entity/--relation/--entity-labels/--relation-labels override the single paths.)

The dataset is loaded as run.py does (one map: sorted labels of train+valid+test, or train only
with --unseen drop); the embedding rows are re-ordered from the label files' order to PyKEEN's
ids, loaded into PyKEEN's DistMult / ComplEx (no constraint or regularizer matters for scoring),
and evaluated with PyKEEN's RankBasedEvaluator, filtered with train+valid+test, realistic rank.
Prints MRR, Hits@1/3/10 (and MR) for head, tail and both, on valid and test.  --expect compares
with a run.py result JSON's metrics at its best epoch (exit 1 if any differs by more than --tol).
--reference also ranks with a plain numpy implementation written from the definitions (below),
straight from the label files, as an independent check of the score functions and the protocol:
  DistMult  s(h, r, t) = sum_k h_k r_k t_k
  ComplEx   s(h, r, t) = Re(sum_k h_k r_k conj(t_k)),  x = x[:d] + i x[d:]
  reciprocal: head query (?, r, t) is scored as the tail query (t, r_inv, ?)
  filtered realistic rank = (1 + #{better} + #{better or equal} - 1 + 1) / 2 over the candidates
  that are not another known (train+valid+test) answer: (optimistic + pessimistic) / 2.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DATA, SIDES, evaluate, load_factories  # noqa: E402


def read_labels(path: Path) -> list[str]:
    return [line.rstrip("\n") for line in open(path, encoding="utf-8") if line.rstrip("\n")]


def reorder(emb: np.ndarray, labels: list[str], label_to_id: dict, what: str) -> np.ndarray:
    """Rows in label-file order -> rows in PyKEEN id order."""
    if len(labels) != emb.shape[0]:
        raise SystemExit(f"{what}: {len(labels)} labels but {emb.shape[0]} embedding rows")
    missing = sorted(set(label_to_id) - set(labels))
    extra = sorted(set(labels) - set(label_to_id))
    if missing or extra or len(set(labels)) != len(labels):
        raise SystemExit(f"{what}: labels differ from the dataset's (missing {missing[:5]}, "
                         f"not in dataset {extra[:5]}, duplicates {len(labels) - len(set(labels))})")
    out = np.empty_like(emb)
    out[[label_to_id[x] for x in labels]] = emb
    return out


def reference(data_dir: Path, model: str, ent, rel, ent_labels, rel_labels, unseen: str) -> dict:
    """Filtered realistic-rank metrics in plain numpy (label-file order, no PyKEEN ids)."""
    from pykeen.triples.utils import load_triples  # only the TSV reader

    raw = {s: load_triples(data_dir / f"{s}.txt") for s in ("train", "valid", "test")}
    e, r = {x: i for i, x in enumerate(ent_labels)}, {x: i for i, x in enumerate(rel_labels)}
    R = len(rel_labels)
    ids = {s: np.array([[e.get(h, -1), r.get(q, -1), e.get(t, -1)] for h, q, t in raw[s]]) for s in raw}
    if unseen == "drop":
        seen = set(ids["train"][:, 0]) | set(ids["train"][:, 2])
        ids = {s: x if s == "train" else x[[h in seen and t in seen for h, _, t in x]] for s, x in ids.items()}
    known_t, known_h = {}, {}
    for h, q, t in np.concatenate(list(ids.values())):
        known_t.setdefault((h, q), set()).add(t)
        known_h.setdefault((t, q), set()).add(h)
    d = ent.shape[1] // 2
    E = ent[:, :d] + 1j * ent[:, d:] if model == "complex" else ent.astype(np.float64)
    W = rel[:, :d] + 1j * rel[:, d:] if model == "complex" else rel.astype(np.float64)

    def tails(h, q):  # scores of (h, q, every entity)
        return np.real(E @ np.conj(E[h] * W[q])) if model == "complex" else E @ (E[h] * W[q])

    def heads(t, q):  # scores of (every entity, q, t)
        if rel.shape[0] == 2 * R:
            return tails(t, q + R)
        return np.real(E @ (W[q] * np.conj(E[t]))) if model == "complex" else E @ (W[q] * E[t])

    out = {}
    for split in ("valid", "test"):
        ranks = {"head": [], "tail": []}
        for h, q, t in ids[split]:
            for side, sc, ans, other in (("tail", tails(h, q), t, known_t[(h, q)]),
                                         ("head", heads(t, q), h, known_h[(t, q)])):
                keep = np.ones(len(sc), bool)
                keep[list(other - {ans})] = False
                s = sc[keep]
                ranks[side].append(0.5 * ((s > sc[ans]).sum() + 1 + (s >= sc[ans]).sum()))
        ranks["both"] = ranks["head"] + ranks["tail"]
        out[split] = {side: {"mrr": float(np.mean(1 / np.array(x))), "mr": float(np.mean(x)),
                             **{f"hits@{k}": float(np.mean(np.array(x) <= k)) for k in (1, 3, 10)}}
                      for side, x in ranks.items()}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--model", required=True, choices=["distmult", "complex"])
    p.add_argument("--emb", type=Path, default=None, help="folder with the four files")
    p.add_argument("--entity", type=Path)
    p.add_argument("--relation", type=Path)
    p.add_argument("--entity-labels", type=Path)
    p.add_argument("--relation-labels", type=Path)
    p.add_argument("--unseen", choices=["keep", "drop"], default="keep")
    p.add_argument("--eval-batch-size", type=int, default=256)
    p.add_argument("--out", type=Path, default=None, help="write the metrics as JSON")
    p.add_argument("--expect", type=Path, default=None, help="run.py result JSON to compare with")
    p.add_argument("--tol", type=float, default=0.0)
    p.add_argument("--reference", action="store_true", help="also rank with the plain numpy reference")
    p.add_argument("--permute", type=int, default=None, metavar="SEED",
                   help="self-test: shuffle the rows and label lists (same permutation) before mapping")
    a = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    paths = {k: getattr(a, k) or (a.emb / f) for k, f in (("entity", "entity.npy"), ("relation", "relation.npy"),
                                                         ("entity_labels", "entities.txt"),
                                                         ("relation_labels", "relations.txt"))}
    ent = np.load(paths["entity"]).astype(np.float32)
    rel = np.load(paths["relation"]).astype(np.float32)
    ent_labels, rel_labels = read_labels(paths["entity_labels"]), read_labels(paths["relation_labels"])
    if a.permute is not None:  # the label -> PyKEEN id mapping must undo any row order
        g = np.random.default_rng(a.permute)
        pe, pr = g.permutation(len(ent_labels)), g.permutation(len(rel_labels))
        ent, ent_labels = ent[pe], [ent_labels[i] for i in pe]
        rows = np.concatenate([pr, pr + len(rel_labels)]) if rel.shape[0] == 2 * len(rel_labels) else pr
        rel, rel_labels = rel[rows], [rel_labels[i] for i in pr]
    raw_ent, raw_rel = ent.copy(), rel.copy()
    reciprocal = rel.shape[0] == 2 * len(rel_labels)
    if not reciprocal and rel.shape[0] != len(rel_labels):
        raise SystemExit(f"relation.npy has {rel.shape[0]} rows for {len(rel_labels)} relation labels")
    if a.model == "complex" and (ent.shape[1] % 2 or rel.shape[1] != ent.shape[1]):
        raise SystemExit("ComplEx: entity and relation width must be the same even number 2d = [re | im]")
    if a.model == "distmult" and rel.shape[1] != ent.shape[1]:
        raise SystemExit("DistMult: entity and relation dims differ")

    fac, info = load_factories(Path(a.data) / a.dataset, a.unseen, inverse=reciprocal)
    tf = fac["train"]
    ent = reorder(ent, ent_labels, tf.entity_to_id, "entities")
    if reciprocal:
        R = len(rel_labels)
        fwd, inv = reorder(rel[:R], rel_labels, tf.relation_to_id, "relations"), \
            reorder(rel[R:], rel_labels, tf.relation_to_id, "relations")
        rel = np.empty_like(rel)
        rel[0::2], rel[1::2] = fwd, inv  # PyKEEN: relation r -> id 2r, its inverse -> 2r + 1
    else:
        rel = reorder(rel, rel_labels, tf.relation_to_id, "relations")

    from pykeen.models import ComplEx, DistMult

    d = ent.shape[1] // (2 if a.model == "complex" else 1)
    if a.model == "distmult":
        model = DistMult(triples_factory=tf, embedding_dim=d, entity_constrainer=None, regularizer=None,
                         random_seed=0)
    else:
        model = ComplEx(triples_factory=tf, embedding_dim=d, regularizer=None, random_seed=0)
    for rep, w in ((model.entity_representations[0], ent), (model.relation_representations[0], rel)):
        if a.model == "complex":  # [re | im] -> PyKEEN's interleaved (re, im) pairs
            w = np.stack([w[:, :d], w[:, d:]], axis=-1).reshape(w.shape[0], 2 * d)
        if tuple(rep._embeddings.weight.shape) != w.shape:
            raise SystemExit(f"shape {w.shape} does not fit PyKEEN's {tuple(rep._embeddings.weight.shape)}")
        with torch.no_grad():
            rep._embeddings.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
    model.eval()

    filt = [fac[s].mapped_triples for s in ("train", "valid", "test")]
    res = {"dataset": a.dataset, "model": a.model, "reciprocal": reciprocal, "data": info, "permute": a.permute,
           "embeddings": {k: str(v) for k, v in paths.items()},
           "protocol": "pykeen RankBasedEvaluator, filtered train+valid+test, realistic rank"}
    for split in ("valid", "test"):
        res[split] = evaluate(model, fac[split].mapped_triples, filt, a.eval_batch_size)
        for s in SIDES:
            m = res[split][s]
            print(f"{split:5s} {s:4s} MRR {m['mrr']:.6f}  H@1 {m['hits@1']:.6f}  H@3 {m['hits@3']:.6f}  "
                  f"H@10 {m['hits@10']:.6f}  MR {m['mr']:.3f}")
    rc = 0
    if a.reference:
        ref = reference(Path(a.data) / a.dataset, a.model, raw_ent, raw_rel, ent_labels, rel_labels, a.unseen)
        dev = max(abs(ref[sp][s][k] - res[sp][s][k]) for sp in ref for s in SIDES for k in ref[sp][s])
        res["numpy_reference"], res["numpy_reference_max_abs_diff"] = ref, dev
        print(f"numpy reference vs PyKEEN: max |difference| {dev:.3g}")
        rc = int(dev > max(a.tol, 1e-6))  # float32 (PyKEEN) vs float64 (numpy) scores: ties may differ
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=1) + "\n")
    if a.expect:
        ref = json.loads(a.expect.read_text())
        worst = 0.0
        for split, key in (("valid", "valid_at_best"), ("test", "test_at_best")):
            for s in SIDES:
                for k, v in (ref.get(key) or {}).get(s, {}).items():
                    worst = max(worst, abs(v - res[split][s][k]))
        print(f"max |difference| to {a.expect.name} (best epoch {ref.get('best_epoch')}): {worst:.3g}")
        return rc or int(worst > a.tol)
    return rc


if __name__ == "__main__":
    sys.exit(main())
