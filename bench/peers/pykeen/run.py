"""Train one PyKEEN 1.11.1 model (DistMult / ComplEx, sLCWA / LCWA) on a ConvE-format KG dataset.

Run with the venv's python (bench/.venv-pykeen, made by setup.sh), single-threaded, nice 19:

    OMP_NUM_THREADS=1 nice -n 19 bench/.venv-pykeen/bin/python bench/peers/pykeen/run.py \
        --dataset nations --model distmult --loop lcwa --dim 128 --lr 0.01 --batch-size 128

Data: ``<data>/<dataset>/{train,valid,test}.txt`` (the ConvE files, extracted by setup.sh),
loaded with ``TriplesFactory.from_path`` and ONE entity/relation map: the sorted labels of
train+valid+test (``--unseen keep``: unseen valid/test entities are kept and ranked), or of train
only with such triples dropped (``--unseen drop``, as PyKEEN's own dataset classes do).

Evaluation: PyKEEN's ``RankBasedEvaluator``, filtered with train+valid+test, "realistic" rank,
head/tail/both; MRR, Hits@1/3/10, MR.  Every ``--eval-every`` epochs: valid, and test (``--test
every``; ``improved``: only when valid MRR improved; ``never``/``--no-test``: for selection).
The curve records cumulative *training* seconds (wall since ``train()`` began minus evaluation
time), the same in process CPU seconds (single thread: not inflated by other jobs), evaluation
seconds, epoch, loss, metrics.  Stops after ``--patience`` evaluations without a better valid
both-sides MRR, past ``--budget`` training seconds, or at ``--max-epochs``; best epoch = first
evaluation with the highest valid MRR.

Memory/speed: PyKEEN 1.11.1's DistMult interaction ``tensor_product(h, r, t).sum(-1)``
materialises [batch, entities, d] when scoring all entities (FB15k-237, batch 1024, d 200: 11.9
GB, OOM-killed); ComplEx does so when scoring all heads (einsum left to right).  So run.py passes
PyKEEN's ``slice_size`` to keep that tensor under ``--slice-mb`` (exact).  Opt-in, recorded:
``--fast-distmult`` / ``--fast-complex`` compute the same function with the two smaller operands
multiplied first and d contracted by a matrix product (~50x less CPU for 1-N DistMult on
FB15k-237); results differ only in float rounding.

Output: ``bench/results/kg/pykeen/<dataset>-<model>-<loop>[-<tag>]-s<seed>.json``.
``--save-embeddings DIR`` writes the best model's embeddings for crosscheck.py
(entity.npy [E, d] (ComplEx: [E, 2d] = [re | im]), relation.npy, entities.txt, relations.txt).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DATA = REPO / "bench" / ".data" / "kg"
OUT = REPO / "bench" / "results" / "kg" / "pykeen"
SIDES = ("head", "tail", "both")
METRICS = {"mrr": "inverse_harmonic_mean_rank", "hits@1": "hits_at_1", "hits@3": "hits_at_3",
           "hits@10": "hits_at_10", "mr": "arithmetic_mean_rank"}
DEFAULT_REG = {"distmult": 0.1, "complex": 0.01}  # PyKEEN's model defaults (LpRegularizer p=2, normalize)

warnings.filterwarnings("ignore", message=".*pin_memory.*")
for name in ("pykeen", "torch_max_mem"):
    logging.getLogger(name).setLevel(logging.ERROR)


# ----------------------------------------------------------------------------- machine / data
def machine() -> dict:
    cpu = ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count()}


def _dist_version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def load() -> str:
    """`uptime` output (load averages 1/5/15 min)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return open("/proc/loadavg").read().strip()


def load_factories(dataset_dir: Path, unseen: str = "keep", inverse: bool = False):
    """train/valid/test TriplesFactory with one entity/relation map (see module docstring)."""
    from pykeen.triples import TriplesFactory
    from pykeen.triples.utils import load_triples

    raw = {s: load_triples(dataset_dir / f"{s}.txt") for s in ("train", "valid", "test")}
    src = [raw["train"]] if unseen == "drop" else list(raw.values())
    ents = sorted(set().union(*[set(t[:, 0]) | set(t[:, 2]) for t in src]))
    rels = sorted(set().union(*[set(t[:, 1]) for t in src]))
    e2i, r2i = {e: i for i, e in enumerate(ents)}, {r: i for i, r in enumerate(rels)}
    out, info = {}, {}
    for s in ("train", "valid", "test"):
        out[s] = TriplesFactory.from_path(dataset_dir / f"{s}.txt", entity_to_id=e2i, relation_to_id=r2i,
                                          create_inverse_triples=inverse and s == "train")
        seen = set(raw["train"][:, 0]) | set(raw["train"][:, 2])
        info[s] = {"file_triples": int(len(raw[s])), "triples": int(out[s].num_triples),
                   "with_entity_unseen_in_train": int(sum(h not in seen or t not in seen for h, _, t in raw[s]))}
    info.update(entities=len(e2i), relations=len(r2i), unseen=unseen, map_from="train" if unseen == "drop"
                else "train+valid+test")
    return out, info


# ----------------------------------------------------------------------------- model / eval
def build_model(model: str, tf, dim: int, reg_weight: float | None, loss: str, seed: int,
                entity_norm: bool = True):
    from pykeen.models import ComplEx, DistMult

    reg = DEFAULT_REG[model] if reg_weight is None else reg_weight
    kw = dict(triples_factory=tf, embedding_dim=dim, loss=loss, random_seed=seed)
    if reg > 0:
        kw.update(regularizer="lp", regularizer_kwargs=dict(weight=reg, p=2.0, normalize=True))
    else:
        kw.update(regularizer=None)
    if model == "distmult":
        if not entity_norm:
            kw["entity_constrainer"] = None
        return DistMult(**kw)
    if model == "complex":
        return ComplEx(**kw)
    raise ValueError(model)


def _einsum_distmult(self, h, r, t):
    a, b, c = sorted((h, r, t), key=lambda x: x.numel())  # broadcast the two small ones first,
    return torch.einsum("...d,...d->...", a * b, c)  # then contract d with the big one (matmul)


def _einsum_complex(self, h, r, t):
    return torch.real(_einsum_distmult(self, h, r, torch.conj(t)))


def patch_fast(distmult: bool, complex_: bool) -> None:
    """Opt-in: the same interaction functions, contracted with a matrix product (module docstring)."""
    from pykeen.nn.modules import ComplExInteraction, DistMultInteraction

    if distmult:
        DistMultInteraction.forward = _einsum_distmult
    if complex_:
        ComplExInteraction.forward = _einsum_complex


def slice_for(model, batch_size: int, slice_mb: float, training: bool = False) -> int | None:
    """Candidate-entity slice keeping a [batch, slice, d] intermediate under slice_mb: stock DistMult
    (training and evaluation) and ComplEx (evaluation: its left-to-right einsum materialises
    h * r = [batch, entities, d] complex when scoring all heads)."""
    from pykeen.nn.modules import ComplExInteraction, DistMultInteraction

    inter = getattr(model, "interaction", None)
    if isinstance(inter, DistMultInteraction) and DistMultInteraction.forward is not _einsum_distmult:
        nbytes = 4
    elif isinstance(inter, ComplExInteraction) and not training and ComplExInteraction.forward is not \
            _einsum_complex:
        nbytes = 8
    else:
        return None
    d = model.entity_representations[0].shape[-1]
    s = int(slice_mb * 2**20 // (nbytes * batch_size * d))
    return None if s >= model.num_entities else max(1, s)


def evaluate(model, triples, filter_triples, batch_size: int = 256, slice_mb: float = 512) -> dict:
    from pykeen.evaluation import RankBasedEvaluator

    r = RankBasedEvaluator(filtered=True).evaluate(model, triples, additional_filter_triples=filter_triples,
                                                  batch_size=batch_size, use_tqdm=False,
                                                  slice_size=slice_for(model, batch_size, slice_mb))
    return {s: {k: float(r.get_metric(f"{s}.realistic.{m}")) for k, m in METRICS.items()} for s in SIDES}


def export_embeddings(model, tf, path: Path) -> None:
    """Entity/relation embeddings in crosscheck.py's format plus the label order files."""
    path.mkdir(parents=True, exist_ok=True)
    for name, rep, labels in (("entity", model.entity_representations[0], tf.entity_id_to_label),
                              ("relation", model.relation_representations[0], tf.relation_id_to_label)):
        w = rep._embeddings.weight.detach().cpu().numpy()
        if getattr(rep, "is_complex", False):  # stored interleaved [re0, im0, re1, im1, ...]
            w = w.reshape(w.shape[0], -1, 2)
            w = np.concatenate([w[..., 0], w[..., 1]], axis=1)
        if name == "relation" and w.shape[0] == 2 * len(labels):  # inverse triples: ids 2r, 2r + 1
            w = np.concatenate([w[0::2], w[1::2]], axis=0)  # -> rows r, then R + r = inverse of r
        np.save(path / f"{name}.npy", w)
        (path / f"{'entities' if name == 'entity' else 'relations'}.txt").write_text(
            "".join(labels[i] + "\n" for i in range(len(labels))))


# ----------------------------------------------------------------------------- training
def run(cfg: dict) -> dict:
    """Train + evaluate one configuration; returns the result dict (see module docstring)."""
    from pykeen.version import get_version
    from pykeen.training import LCWATrainingLoop, SLCWATrainingLoop
    from pykeen.training.callbacks import TrainingCallback
    from pykeen.utils import set_random_seed

    torch.set_num_threads(cfg["threads"])
    patch_fast(cfg["fast_distmult"], cfg["fast_complex"])
    load_start, t_all = load(), time.perf_counter()
    set_random_seed(cfg["seed"])
    fac, data_info = load_factories(Path(cfg["data"]) / cfg["dataset"], cfg["unseen"], cfg["inverse"])
    filt = [fac[s].mapped_triples for s in ("train", "valid", "test")]
    model = build_model(cfg["model"], fac["train"], cfg["dim"], cfg["reg_weight"], cfg["loss"], cfg["seed"],
                        cfg["entity_norm"])
    opt_kw = dict(lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    if cfg["loop"] == "slcwa":
        loop = SLCWATrainingLoop(model=model, triples_factory=fac["train"], optimizer=cfg["optimizer"],
                                 optimizer_kwargs=opt_kw, negative_sampler="basic",
                                 negative_sampler_kwargs=dict(num_negs_per_pos=cfg["num_negs"]))
    else:
        loop = LCWATrainingLoop(model=model, triples_factory=fac["train"], optimizer=cfg["optimizer"],
                                optimizer_kwargs=opt_kw)

    st = {"eval_s": 0.0, "eval_cpu": 0.0, "curve": [], "best": None, "best_state": None, "bad": 0,
          "stopped_by": "max_epochs"}

    def do_eval(epoch: int, loss: float, train_s: float, train_cpu: float) -> None:
        t, c = time.perf_counter(), time.process_time()
        rec = {"epoch": epoch, "train_seconds": round(train_s, 3), "train_cpu_seconds": round(train_cpu, 3),
               "loss": loss,
               "valid": evaluate(model, fac["valid"].mapped_triples, filt, cfg["eval_batch_size"], cfg["slice_mb"])}
        improved = st["best"] is None or rec["valid"]["both"]["mrr"] > st["best"]["valid"]["both"]["mrr"]
        if cfg["test"] == "every" or (cfg["test"] == "improved" and improved):
            rec["test"] = evaluate(model, fac["test"].mapped_triples, filt, cfg["eval_batch_size"], cfg["slice_mb"])
        rec["eval_seconds"] = round(time.perf_counter() - t, 3)
        st["eval_s"] += time.perf_counter() - t
        st["eval_cpu"] += time.process_time() - c
        st["curve"].append(rec)
        if improved:
            st["best"], st["bad"] = rec, 0
            if cfg["save_embeddings"]:
                st["best_state"] = copy.deepcopy(model.state_dict())
        else:
            st["bad"] += 1
        if cfg["verbose"]:
            print(f"epoch {epoch:4d} train {train_s:8.1f}s loss {loss:.5f} valid mrr "
                  f"{rec['valid']['both']['mrr']:.4f}" + (f" test mrr {rec['test']['both']['mrr']:.4f}"
                                                          if "test" in rec else ""), flush=True)

    class Curve(TrainingCallback):
        def post_epoch(self, epoch: int, epoch_loss: float, **kwargs) -> None:
            train_s = time.perf_counter() - st["t0"] - st["eval_s"]
            train_cpu = time.process_time() - st["c0"] - st["eval_cpu"]
            used = train_cpu if cfg["budget_clock"] == "cpu" else train_s
            over = cfg["budget"] is not None and used >= cfg["budget"]
            if epoch % cfg["eval_every"] == 0 or over or epoch == cfg["max_epochs"]:
                do_eval(epoch, float(epoch_loss), train_s, train_cpu)
            if st["bad"] >= cfg["patience"]:
                st["stopped_by"] = "early_stopping"
            elif over:
                st["stopped_by"] = "budget"
            else:
                return
            self.training_loop._should_stop = True

    train_kw = dict(num_epochs=cfg["max_epochs"], batch_size=cfg["batch_size"], use_tqdm=False,
                    use_tqdm_batch=False, callbacks=[Curve()])
    if cfg["loop"] == "lcwa":
        train_kw.update(label_smoothing=cfg["label_smoothing"],
                        slice_size=slice_for(model, cfg["batch_size"], cfg["slice_mb"], training=True))
    st["t0"], st["c0"] = time.perf_counter(), time.process_time()
    loop.train(triples_factory=fac["train"], **train_kw)
    fit_s, fit_cpu = time.perf_counter() - st["t0"], time.process_time() - st["c0"]
    if cfg["save_embeddings"] and st["best_state"] is not None:
        model.load_state_dict(st["best_state"])
        export_embeddings(model, fac["train"], Path(cfg["save_embeddings"]))
    best = st["best"]
    return {
        "framework": "pykeen", "dataset": cfg["dataset"], "model": cfg["model"], "loop": cfg["loop"],
        "seed": cfg["seed"], "tag": cfg.get("tag", ""),
        "hyperparameters": {k: cfg[k] for k in HPARAMS},
        "reg_weight_effective": DEFAULT_REG[cfg["model"]] if cfg["reg_weight"] is None else cfg["reg_weight"],
        "protocol": {"evaluator": "pykeen RankBasedEvaluator", "filtered": "train+valid+test",
                     "rank": "realistic", "sides": "head, tail, both", "selection": "valid both mrr",
                     "patience_evaluations": cfg["patience"], "eval_every": cfg["eval_every"],
                     "budget_train_seconds": cfg["budget"], "budget_clock": cfg["budget_clock"],
                     "max_epochs": cfg["max_epochs"]},
        "data": data_info,
        **{k: (best or {}).get(v) for k, v in (("best_epoch", "epoch"), ("best_train_seconds", "train_seconds"),
           ("best_train_cpu_seconds", "train_cpu_seconds"), ("valid_at_best", "valid"), ("test_at_best", "test"))},
        "epochs_run": loop._epoch,
        "stopped_by": st["stopped_by"],
        "train_seconds": round(fit_s - st["eval_s"], 3),
        "train_cpu_seconds": round(fit_cpu - st["eval_cpu"], 3),
        "eval_seconds": round(st["eval_s"], 3),
        "total_seconds": round(time.perf_counter() - t_all, 3),
        "curve": st["curve"],
        "losses": [float(x) for x in loop.losses_per_epochs],
        "versions": {"pykeen": get_version(), "torch": torch.__version__, "numpy": np.__version__,
                     "opt_einsum": _dist_version("opt_einsum"), "python": sys.version.split()[0]},
        "machine": machine(),
        "threads": {"torch": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"), "nice": os.nice(0)},
        "load_start": load_start, "load_end": load(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


HPARAMS = ("dim", "lr", "optimizer", "weight_decay", "reg_weight", "loss", "batch_size", "num_negs",
           "label_smoothing", "inverse", "entity_norm", "unseen", "eval_batch_size", "fast_distmult", "fast_complex",
           "slice_mb")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="folder under --data: nations, umls, kinship, WN18RR, FB15k-237")
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--model", required=True, choices=["distmult", "complex"])
    p.add_argument("--loop", required=True, choices=["slcwa", "lcwa"])
    p.add_argument("--dim", type=int, default=200, help="embedding dim (ComplEx: complex dim, 2x real numbers)")
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--weight-decay", type=float, default=0.0, help="optimizer weight decay")
    p.add_argument("--reg-weight", type=float, default=None,
                   help="model's LpRegularizer weight (p=2, normalized; DistMult: relations only, ComplEx: both); "
                        "0 = none; default: PyKEEN's (DistMult 0.1, ComplEx 0.01)")
    p.add_argument("--loss", default=None, help="PyKEEN loss name; default softplus (sLCWA) / bcewithlogits (LCWA)")
    p.add_argument("--batch-size", type=int, default=256, help="sLCWA: positives; LCWA: (h, r) rows per batch")
    p.add_argument("--num-negs", type=int, default=1, help="sLCWA negatives per positive (basic sampler)")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="LCWA only")
    p.add_argument("--inverse", dest="inverse", action="store_true", default=None,
                   help="train with inverse triples (reciprocal relations); default: on for LCWA, off for sLCWA")
    p.add_argument("--no-inverse", dest="inverse", action="store_false")
    p.add_argument("--no-entity-norm", dest="entity_norm", action="store_false",
                   help="DistMult: drop PyKEEN's default unit-L2 entity constraint")
    p.add_argument("--unseen", choices=["keep", "drop"], default="keep")
    p.add_argument("--max-epochs", type=int, default=1000)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--patience", type=int, default=5, help="evaluations without valid MRR improvement")
    p.add_argument("--budget", type=float, default=None, help="training-seconds budget (checked after each epoch)")
    p.add_argument("--budget-clock", choices=["wall", "cpu"], default="wall",
                   help="budget in wall seconds, or in this process's CPU seconds (robust to other jobs)")
    p.add_argument("--eval-batch-size", type=int, default=256)
    p.add_argument("--slice-mb", type=float, default=512, help="stock DistMult: cap of the [B, slice, d] tensor")
    p.add_argument("--fast-distmult", action="store_true", help="opt-in einsum DistMult interaction (see above)")
    p.add_argument("--fast-complex", action="store_true", help="opt-in ComplEx interaction, h * r * conj(t) "
                   "contracted with the largest operand last (same function; fast all-heads scoring)")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--test", choices=["every", "improved", "never"], default="every",
                   help="rank test at every evaluation, only when valid MRR improved (enough for the test "
                        "figures at the best epoch), or never (selection)")
    p.add_argument("--no-test", dest="test", action="store_const", const="never", help="= --test never")
    p.add_argument("--save-embeddings", default=None, metavar="DIR", help="best model's embeddings for crosscheck.py")
    p.add_argument("--tag", default="")
    p.add_argument("--out", default=str(OUT), help="result folder ('' = do not write)")
    p.add_argument("--quiet", dest="verbose", action="store_false")
    return p


def config(args: argparse.Namespace) -> dict:
    cfg = vars(args).copy()
    if cfg["inverse"] is None:
        cfg["inverse"] = cfg["loop"] == "lcwa"
    if cfg["loss"] is None:
        cfg["loss"] = "softplus" if cfg["loop"] == "slcwa" else "bcewithlogits"
    cfg["label_smoothing" if cfg["loop"] == "slcwa" else "num_negs"] = None  # not used by this loop
    if cfg["model"] != "distmult":
        cfg["entity_norm"] = None
    return cfg


def main(argv=None) -> int:
    cfg = config(parser().parse_args(argv))
    res = run(cfg)
    res["argv"] = sys.argv[1:] if argv is None else list(argv)
    if cfg["out"]:
        name = f"{cfg['dataset']}-{cfg['model']}-{cfg['loop']}" + (f"-{cfg['tag']}" if cfg["tag"] else "") \
               + f"-s{cfg['seed']}.json"
        Path(cfg["out"]).mkdir(parents=True, exist_ok=True)
        (Path(cfg["out"]) / name).write_text(json.dumps(res, indent=1) + "\n")
        print("wrote", Path(cfg["out"]) / name)
    b = res["test_at_best"] or {}
    print(json.dumps({"best_epoch": res["best_epoch"], "train_s_to_best": res["best_train_seconds"],
                      "valid_mrr": (res["valid_at_best"] or {}).get("both", {}).get("mrr"),
                      "test_mrr": b.get("both", {}).get("mrr"), "stopped_by": res["stopped_by"],
                      "train_s": res["train_seconds"], "eval_s": res["eval_seconds"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
