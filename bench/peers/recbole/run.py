"""Train one RecBole 1.2.1 model on a converted dataset (jnskr's split) and write one JSON.

Run with the VENV's python (bench/peers/recbole/.venv, made by setup.sh), at low priority and
single-threaded, e.g.:

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 19 bench/peers/recbole/.venv/bin/python \
        bench/peers/recbole/run.py --dataset ml100k-kgat --model BPR --seed 2020 --budget 300

Protocol: full ranking over all items (valid: minus the user's train items; test: minus train
and valid items, i.e. jnskr's whole train set), metrics Recall/NDCG/Precision/Hit @10/20/40,
best epoch chosen on valid Recall@20 (jnskr's default selection metric) with RecBole's early
stopping (``stopping_step`` 10 evaluations without improvement), test metrics of the best
checkpoint.  Everything else is RecBole's default for the model, unless given with ``--set``.

Time budget: when the wall time since training began exceeds ``--budget`` seconds at the end of
an epoch (training plus validation), training stops, the best checkpoint so far is tested, and
the JSON says ``"stopped_by": "budget"``.  ``--budget 0``: no budget (``tune.py``, the fair
protocol: only RecBole's early stop on validation, or its ``epochs`` cap, ends training).

Per-user test Recall@20 / NDCG@20 (jnskr user ids) are recorded as ``per_user``, so
``bench.report`` can run paired tests against jnskr's rows.

Output: ``bench/results/recbole/<dataset>-<model>[-<tag>]-s<seed>.json``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("DGLBACKEND", "pytorch")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
KG_MODELS = {"CKE", "CFKG", "KGAT", "KGCN", "KGNNLS", "KTUP", "MKR", "RippleNet", "KGIN", "MCCLK"}
KS = [10, 20, 40]
VALID_METRIC = "Recall@20"

sys.path.insert(0, str(HERE))
import compat  # noqa: E402  (shims: torch.load weights_only, dgl 0.x API for KGAT)

compat.patch_torch_load()


class BudgetExceeded(Exception):
    pass


class Terminated(Exception):
    pass


def _machine() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"hostname": platform.node(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version()}


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if hasattr(x, "item") and callable(x.item):
        try:
            return x.item()
        except Exception:
            pass
    return str(x)


def _metrics(result) -> dict:
    """RecBole's result dict ('recall@20': ...) with our key spelling (all lower case)."""
    return {str(k).lower(): float(v) for k, v in dict(result).items()}


def _parse_set(items: list[str]) -> dict:
    out = {}
    for s in items:
        k, _, v = s.partition("=")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _test_scores(model, test_data, dataset):
    """(users, scores): the test score matrix of the users RecBole evaluates, in jnskr's dense ids.

    RecBole's [PAD] and each user's history (train + valid items) are -inf, as in its evaluation.
    Tokens are jnskr's dense ids (convert.py), so ``int(token)`` maps back.
    """
    import numpy as np
    from recbole.utils.case_study import full_sort_scores

    uids = np.asarray(test_data.uid_list, dtype=np.int64)
    users = np.asarray([int(t) for t in dataset.field2id_token[dataset.uid_field][uids]], dtype=np.int64)
    items = np.asarray([int(t) for t in dataset.field2id_token[dataset.iid_field][1:]], dtype=np.int64)
    n_items = int(items.max()) + 1
    out = np.full((len(uids), n_items), -np.inf, dtype=np.float32)
    with torch.no_grad():
        for lo in range(0, len(uids), 256):
            sc = full_sort_scores(uids[lo:lo + 256].tolist(), model, test_data, device=torch.device("cpu"))
            out[lo:lo + 256][:, items] = sc[:, 1:].float().numpy()
    return users, out


def _dump_scores(users, scores, path: Path) -> None:
    import numpy as np

    np.savez_compressed(path, users=users, scores=scores)


def _per_user(users, scores, test_file: Path, k: int = 20) -> dict:
    """Per-user test Recall@k and standard NDCG@k (jnskr's definitions, spec section 6) from the
    score matrix, in the layout of jnskr's ``per_user`` record, so bench.report can pair a
    RecBole row with a jnskr row user by user.  Their means equal RecBole's own figures (checked
    by the caller)."""
    import numpy as np

    truth: dict[int, set] = {}
    with open(test_file, encoding="utf-8") as f:
        next(f)
        for line in f:
            u, i = line.split("\t")[:2]
            truth.setdefault(int(u), set()).add(int(i))
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    rec, ndcg, keep = [], [], []
    for row, u in enumerate(users.tolist()):
        t = truth.get(int(u))
        if not t:
            continue
        s = scores[row]
        top = np.argpartition(-s, k)[:k]
        top = top[np.argsort(-s[top], kind="stable")]
        hits = np.array([int(i) in t for i in top.tolist()], dtype=float)
        keep.append(int(u))
        rec.append(float(hits.sum() / len(t)))
        ndcg.append(float((hits * disc).sum() / disc[:min(k, len(t))].sum()))
    return {"users": keep, f"recall@{k}": rec, f"ndcg@{k}": ndcg}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="name of a converted dataset under --data")
    p.add_argument("--data", type=Path, default=HERE / "data", help="converted data root")
    p.add_argument("--model", required=True)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--budget", type=float, default=300.0,
                   help="training wall-time budget in seconds; 0: none (the fair protocol: early stop only)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tag", default="", help="suffix for the result name, e.g. lr0.01")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="extra RecBole config entries, e.g. --set learning_rate=0.01")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "recbole")
    p.add_argument("--dump-scores", action="store_true",
                   help="save the best model's test scores in jnskr ids to <work>/test_scores.npz "
                        "(for crosscheck.py: jnskr's evaluator on RecBole's scores)")
    p.add_argument("--work", type=Path, default=HERE / "work", help="checkpoints and logs (gitignored)")
    a = p.parse_args(argv)

    torch.set_num_threads(a.threads)
    dgl_ok = compat.patch_dgl() if a.model == "KGAT" else None
    if dgl_ok is False:
        raise SystemExit("KGAT needs dgl, which cannot be imported in this environment")
    scatter = compat.patch_torch_scatter() if a.model == "KGIN" else None
    from recbole import __version__ as recbole_version
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import ModelType, get_model, get_trainer, init_logger, init_seed

    name = f"{a.dataset}-{a.model}" + (f"-{a.tag}" if a.tag else "") + f"-s{a.seed}"
    work = a.work / name
    work.mkdir(parents=True, exist_ok=True)
    config_dict = {
        "data_path": str(a.data),
        "benchmark_filename": ["train", "valid", "test"],
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "load_col": {"inter": ["user_id", "item_id"]},
        "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
        "metrics": ["Recall", "NDCG", "Precision", "Hit"],
        "topk": KS,
        "valid_metric": VALID_METRIC,
        "metric_decimal_place": 8,
        "seed": a.seed,
        "reproducibility": True,
        "use_gpu": False,
        "device": "cpu",
        "show_progress": False,
        "checkpoint_dir": str(work / "saved"),
        "log_wandb": False,
        "save_dataset": False,
        "save_dataloaders": False,
        # no filtering: our files are already the data (filters would shift the split cuts)
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
    }
    if a.model in KG_MODELS:
        config_dict["load_col"].update({"kg": ["head_id", "relation_id", "tail_id"],
                                        "link": ["item_id", "entity_id"]})
    config_dict.update(_parse_set(a.set))

    os.chdir(work)  # RecBole writes ./log and ./log_tensorboard relative to the cwd
    config = Config(model=a.model, dataset=a.dataset, config_dict=config_dict)
    if config["MODEL_TYPE"] == ModelType.CONTEXT and "train_neg_sample_args" not in config_dict:
        # RecBole's context-aware defaults (quick_start_config/context-aware.yaml) expect explicit
        # 0/1 labels (train_neg_sample_args None, 'labeled' eval).  Our data is implicit, all
        # positives, so use RecBole's general default: 1 uniform negative per positive, which
        # also makes the point-wise sampler create the label field (else: KeyError 'label').
        config_dict["train_neg_sample_args"] = {"distribution": "uniform", "sample_num": 1, "alpha": 1.0,
                                                "dynamic": False, "candidate_num": 0}
        config = Config(model=a.model, dataset=a.dataset, config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = logging.getLogger()
    logger.info(config)

    t_data = time.perf_counter()
    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    data_seconds = time.perf_counter() - t_data
    # With benchmark files RecBole cuts the loaded rows back into train/valid/test by the per-file
    # row counts read at load time; any row dropped in between would shift the cuts silently.
    file_rows = dict(zip(["train", "valid", "test"], [int(n) for n in dataset.file_size_list]))
    rows_kept = int(len(dataset.inter_feat))
    if rows_kept != sum(file_rows.values()):
        raise SystemExit(f"RecBole dropped {sum(file_rows.values()) - rows_kept} interaction rows after "
                         "loading: the train/valid/test cuts would be wrong (see convert.py)")

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

    epochs: list[dict] = []
    state = {"t0": None, "stopped_by": "early_stopping_or_max_epochs"}
    orig_train_epoch = trainer._train_epoch
    orig_valid_epoch = trainer._valid_epoch

    def train_epoch(train_data, epoch_idx, *args, **kwargs):
        if state["t0"] is None:
            state["t0"] = time.perf_counter()
        elif a.budget > 0 and time.perf_counter() - state["t0"] > a.budget:
            state["stopped_by"] = "budget"
            raise BudgetExceeded
        t = time.perf_counter()
        loss = orig_train_epoch(train_data, epoch_idx, *args, **kwargs)
        epochs.append({"epoch_idx": epoch_idx, "train_seconds": time.perf_counter() - t,
                       "loss": _jsonable(loss)})
        return loss

    def valid_epoch(valid_data, *args, **kwargs):
        t = time.perf_counter()
        out = orig_valid_epoch(valid_data, *args, **kwargs)
        if epochs:
            epochs[-1]["valid_seconds"] = time.perf_counter() - t
            epochs[-1]["valid_score"] = float(out[0])
            epochs[-1]["end_seconds"] = time.perf_counter() - state["t0"]
        return out

    trainer._train_epoch = train_epoch
    trainer._valid_epoch = valid_epoch

    def on_term(signum, frame):  # `timeout` sends SIGTERM: finish with what we have
        raise Terminated(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    t_fit = time.perf_counter()
    error = None
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    except BudgetExceeded:
        logger.info("budget of %.0f s exceeded after %d epochs: testing the best checkpoint", a.budget, len(epochs))
    except Terminated as e:
        error = f"terminated ({e}) during epoch {len(epochs) + 1}; tested the best checkpoint so far"
        state["stopped_by"] = "terminated"
        logger.info(error)
    fit_seconds = time.perf_counter() - t_fit
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if state["stopped_by"] == "early_stopping_or_max_epochs":
        state["stopped_by"] = "max_epochs" if len(epochs) >= config["epochs"] else "early_stopping"

    best_valid = _metrics(trainer.best_valid_result) if trainer.best_valid_result else {}
    # best epoch: the first epoch whose valid score equals the best (RecBole keeps the first on ties
    # only when bigger; with '>=' it keeps the LAST equal one, so take the last).
    best_epoch = None  # 1-based epoch number (RecBole's log counts from 0)
    for e in epochs:
        e["epoch"] = e.pop("epoch_idx") + 1 if "epoch_idx" in e else e["epoch"]
        if "valid_score" in e and e["valid_score"] == trainer.best_valid_score:
            best_epoch = e["epoch"]
    t_test = time.perf_counter()
    if trainer.best_valid_result is None:  # stopped before the first validation: nothing to test
        test_result = {}
        error = (error or "") + " no epoch was validated, so nothing was tested"
    else:
        test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    test_seconds = time.perf_counter() - t_test
    per_user = {}
    if test_result:
        users, scores = _test_scores(trainer.model, test_data, dataset)
        if a.dump_scores:
            _dump_scores(users, scores, work / "test_scores.npz")
        per_user = _per_user(users, scores, a.data / a.dataset / f"{a.dataset}.test.inter")
        for key in ("recall@20", "ndcg@20"):  # RecBole rounds to 8 decimals
            mine, theirs = sum(per_user[key]) / len(per_user[key]), _metrics(test_result).get(key)
            if theirs is not None and abs(mine - theirs) > 1e-6:
                per_user["mismatch"] = f"{key}: per-user mean {mine:.8f} vs RecBole {theirs:.8f}"

    train_secs = [e["train_seconds"] for e in epochs]
    best_rec = next((e for e in epochs if e["epoch"] == best_epoch), None)
    res = {
        "dataset": a.dataset,
        "model": a.model,
        "tag": a.tag,
        "seed": a.seed,
        "framework": "recbole",
        "test": _metrics(test_result),
        "valid": best_valid,
        "valid_metric": VALID_METRIC.lower(),
        "best_epoch": best_epoch,
        "best_epoch_note": "1-based; chosen on valid recall@20 (RecBole: the last epoch reaching the best score)",
        "epochs_run": len(epochs),
        "seconds_per_epoch": (sum(train_secs) / len(train_secs)) if train_secs else None,
        "seconds_per_epoch_note": "mean training time per epoch, without the validation pass",
        "valid_seconds_per_epoch": (sum(e.get("valid_seconds", 0.0) for e in epochs) / len(epochs)) if epochs else None,
        "seconds_to_best_epoch": best_rec.get("end_seconds") if best_rec else None,
        "fit_seconds": fit_seconds,
        "test_seconds": test_seconds,
        "data_seconds": data_seconds,
        "total_seconds": data_seconds + fit_seconds + test_seconds,
        "budget_seconds": a.budget if a.budget > 0 else None,
        "stopped_by": state["stopped_by"],
        "error": error,
        "epochs": epochs,
        "per_user": per_user,
        "n_interactions": file_rows,
        "n_users": dataset.user_num - 1,
        "n_items": dataset.item_num - 1,
        "config": _jsonable(dict(config.final_config_dict)),
        "machine": _machine(),
        "versions": {"torch": torch.__version__, "recbole": recbole_version,
                     "numpy": __import__("numpy").__version__, "pandas": __import__("pandas").__version__,
                     "scipy": __import__("scipy").__version__},
        "shims": {"torch.load weights_only=False": True, "dgl 0.x API": dgl_ok,
                  "torch_scatter": scatter},
        "threads": {"torch": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"), "nice": os.nice(0)},
        "conditions": ("RecBole 1.2.1 on CPU, single-threaded (torch.set_num_threads(1), OMP/MKL=1) at low "
                       "priority (nice 19) on a shared 2-core machine while other jobs ran; timings are "
                       "indicative only. Split: jnskr's train/test, valid = jnskr holdout_split(train, 0.1, "
                       "seed 2020); RecBole trains on the 90% train part. Full ranking, best epoch by valid "
                       "Recall@20, RecBole defaults otherwise unless --set or tune.py says so."),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
    }
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"{name}.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({"result": str(path), "test": {k: res["test"].get(k) for k in ("recall@20", "ndcg@20")},
                      "error": error,
                      "best_epoch": best_epoch, "epochs": len(epochs), "s_per_epoch": res["seconds_per_epoch"],
                      "stopped_by": res["stopped_by"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
