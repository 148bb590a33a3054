"""The public model API: `Recommender(config).fit(dataset)`, `score`, `recommend`, `save`, `load`.

Raw ids in, raw ids out; dense integer ids inside.  Evaluation reads the model only through
`model.score(users) -> [n_users, n_items]`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from jnskr.config import Config, ENMFConfig, build_config, config_to_dict, validate_config
from jnskr.data.dataset import Dataset, Interactions
from jnskr.data.kg import ItemKG, build_item_kg
from jnskr.errors import JnskrError
from jnskr.models import ENMF, JNSKR, Popularity
from jnskr.runs import (
    environment,
    load_tensors,
    read_json,
    read_yaml,
    save_tensors,
    write_json,
    write_yaml,
)

log = logging.getLogger("jnskr")


KG_MODELS = ("jnskr", "jnskr_sampled")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise JnskrError("--device cuda: CUDA is not available on this machine")
    return torch.device(name)


def merge_interactions(a: Interactions, b: Interactions) -> Interactions:
    ua, ia = a.pairs()
    ub, ib = b.pairs()
    return Interactions.from_pairs(np.concatenate([ua, ub]), np.concatenate([ia, ib]), a.n_users, a.n_items)


def _item_kg_tensors(kg: ItemKG) -> dict[str, torch.Tensor]:
    return {
        "kg_indptr": torch.from_numpy(kg.indptr),
        "kg_relations": torch.from_numpy(kg.relations),
        "kg_tails": torch.from_numpy(kg.tails),
        "kg_tail_entity": torch.from_numpy(kg.tail_entity),
        "kg_relation_source": torch.from_numpy(kg.relation_source),
    }


def _item_kg_from(t: dict[str, torch.Tensor], relation_names: list[str]) -> ItemKG:
    return ItemKG(
        indptr=t["kg_indptr"].numpy(), relations=t["kg_relations"].numpy(), tails=t["kg_tails"].numpy(),
        n_relations=len(t["kg_relation_source"]), n_tails=len(t["kg_tail_entity"]),
        tail_entity=t["kg_tail_entity"].numpy(), relation_source=t["kg_relation_source"].numpy(),
        relation_names=relation_names,
    )


def _truncate_log(path: Path, epochs: int) -> None:
    """Keep the first `epochs` lines of log.jsonl (epochs after the checkpoint are replayed)."""
    if path.is_file():
        lines = path.read_text().splitlines(keepends=True)[:epochs]
        from jnskr.runs import atomic_write_text

        atomic_write_text(path, "".join(lines))


def _ckpt_epoch(ckpt) -> int | None:
    if ckpt is None or ckpt.latest() is None:
        return None
    return int(torch.load(ckpt.latest() / "trainer.pt", weights_only=True)["state"]["epoch"])


class Recommender:
    """A configured model, trained with `fit`, queried with `score`/`recommend`."""

    def __init__(self, config: Config | dict | None = None, **overrides):
        if config is None:
            config = build_config("default")
        elif isinstance(config, dict):
            config = validate_config(config)
        if overrides:
            config = validate_config({**config_to_dict(config), **overrides})
        self.config: Config = config
        self.model = None
        self.item_kg: ItemKG | None = None
        self.train_seen: Interactions | None = None  # every train.txt item (masked at recommend)
        self.item_counts: np.ndarray | None = None
        self.ids: dict = {}
        self.metrics: dict = {}
        self.trainer = None
        self.device = torch.device("cpu")

    # ------------------------------------------------------------------ build
    def _build_model(self, n_users: int, n_items: int, item_counts: np.ndarray):
        cfg = self.config
        if cfg.model in KG_MODELS:
            return JNSKR(n_users, n_items, self.item_kg, cfg.jnskr, seed=cfg.seed)
        if cfg.model == "enmf":
            return ENMF(n_users, n_items, cfg.enmf, seed=cfg.seed)
        if cfg.model == "bpr":  # MF with the same parametrisation as ENMF: ŷ = hᵀ(p ∘ q)
            return ENMF(n_users, n_items, ENMFConfig(embed_dim=cfg.bpr.embed_dim, init_std=cfg.bpr.init_std),
                        seed=cfg.seed)
        return Popularity(item_counts)

    def _set_ids(self, ds: Dataset) -> None:
        def lst(a):
            return None if a is None else [str(x) for x in a.tolist()]

        self.ids = {
            "dataset": ds.name,
            "n_users": ds.n_users,
            "n_items": ds.n_items,
            "user_ids": lst(ds.user_ids),
            "item_ids": lst(ds.item_ids),
            "item_names": lst(ds.item_names),
            "relation_names": list(self.item_kg.relation_names) if self.item_kg is not None else [],
            "tail_entity_ids": (
                [str(ds.kg.entity_ids[e]) if ds.kg.entity_ids is not None else str(e)
                 for e in self.item_kg.tail_entity.tolist()]
                if self.item_kg is not None and ds.kg is not None else []
            ),
            "tail_entity_names": (
                [str(ds.kg.entity_names[e]) for e in self.item_kg.tail_entity.tolist()]
                if self.item_kg is not None and ds.kg is not None and ds.kg.entity_names is not None else None
            ),
        }

    # -------------------------------------------------------------------- fit
    def fit(self, dataset: Dataset, run_dir: str | Path | None = None, progress: bool = False,
            resume: bool = False) -> "Recommender":
        """Train and evaluate on `dataset` (protocol from the config); write `run_dir` if given.

        With a run folder, a checkpoint is written every `train.checkpoint_every` epochs (0: at
        every evaluation) and `resume=True` continues from it; the result equals an
        uninterrupted run with the same seed.
        """
        from jnskr.data.split import holdout_split
        from jnskr.training.checkpoint import Checkpointer
        from jnskr.training.objectives import BPRObjective, ENMFObjective, JNSKRObjective, JNSKRSampledObjective
        from jnskr.training.trainer import Trainer, TrainingDiverged

        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.device = resolve_device(cfg.device)
        paper = cfg.train.protocol == "paper"
        if paper:
            log.warning("protocol: paper -- model selection on the TEST set, as the original code "
                        "(optimistic; use protocol: standard for honest numbers)")
            train_part, valid = dataset.train, None
        else:
            train_part, valid = holdout_split(dataset.train, cfg.data.valid_ratio, cfg.data.split_seed)
        self.train_seen = dataset.train
        self.item_counts = dataset.train.item_counts()
        use_kg = dataset.has_kg and cfg.data.use_kg
        if not cfg.data.use_kg and dataset.has_kg:
            log.info("data.use_kg is false: ignoring the KG of %s (CF-only)", dataset.name)
        if cfg.model in KG_MODELS and use_kg:
            self.item_kg = build_item_kg(dataset.kg, dataset.n_items, train_part.item_counts(),
                                         cfg.data.kg_heads, cfg.data.inverse_relations)
            log.info("item KG: %d facts, %d relations, %d tails, %d of %d items with facts",
                     self.item_kg.n_facts, self.item_kg.n_relations, self.item_kg.n_tails,
                     int((self.item_kg.degrees() > 0).sum()), dataset.n_items)
        elif cfg.model in KG_MODELS and not dataset.has_kg:
            log.warning("dataset %s has no KG: training JNSKR as a CF-only model", dataset.name)
        self._set_ids(dataset)
        self.model = self._build_model(dataset.n_users, dataset.n_items, train_part.item_counts()).to(self.device)
        from jnskr.distributed import DistComm, init_from_env, shard_users, sum_across_ranks

        distributed = init_from_env(self.device)
        if distributed:
            if resume:
                raise JnskrError("--resume is not supported under torchrun; resume with one process")
            self.model.comm = DistComm()
            rank, world = self.model.comm.rank, self.model.comm.world
            log.info("distributed: rank %d of %d (%s)", rank, world, "nccl" if self.device.type == "cuda" else "gloo")
            if rank != 0:  # only rank 0 logs and writes
                run_dir = None
                progress = False
                logging.getLogger("jnskr").setLevel(logging.WARNING)
        run_dir = Path(run_dir) if run_dir is not None else None
        self._fingerprint = dataset.fingerprint()
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            if not resume:
                (run_dir / "log.jsonl").unlink(missing_ok=True)
                (run_dir / "metrics.json").unlink(missing_ok=True)
            self._write_run_files(run_dir, status="running")
        from jnskr.evaluation import evaluate

        ecfg = cfg.eval
        eval_ks = sorted(set(ecfg.ks) | {cfg.select_k()})

        def run_eval(test: Interactions, exclude: list[Interactions]) -> dict:
            self.model.eval()
            self.model.prepare_scoring()
            users, reduce = None, None
            if distributed:
                users = shard_users(np.flatnonzero(test.user_counts() > 0), self.model.comm.rank,
                                    self.model.comm.world)
                reduce = sum_across_ranks
            res = evaluate(self.model, test, exclude, ks=eval_ks, k_max=ecfg.k_max, batch_size=ecfg.batch_size,
                           users=users, reduce=reduce)
            return res.metrics

        t0 = time.perf_counter()
        best_epoch = 0
        valid_metrics: dict = {}
        if cfg.model != "popularity":
            if cfg.model == "jnskr":
                objective = JNSKRObjective(self.model, train_part, self.item_kg, cfg.jnskr, cfg.seed)
                log.info("weights: %s", {k: round(v, 5) for k, v in objective.weight_summary().items()})
            elif cfg.model == "jnskr_sampled":
                objective = JNSKRSampledObjective(self.model, train_part, self.item_kg, cfg.jnskr, cfg.seed,
                                                  cfg.sampled.negatives)
            elif cfg.model == "bpr":
                objective = BPRObjective(self.model, train_part, cfg.bpr.reg, cfg.seed)
            else:
                objective = ENMFObjective(self.model, train_part, cfg.enmf, cfg.seed)
            if paper:
                validate = lambda: run_eval(dataset.test, [dataset.train])  # noqa: E731
            else:
                validate = lambda: run_eval(valid, [train_part])  # noqa: E731
            self.trainer = Trainer(
                self.model, objective, seed=cfg.seed, batch_size=cfg.train.batch_size, epochs=cfg.train.epochs,
                drop_last=cfg.drop_last(), optimizer=cfg.train.optimizer, lr=cfg.learning_rate(),
                initial_accumulator=cfg.train.initial_accumulator, eval_every=cfg.eval_every(),
                eval_schedule="paper" if paper else "standard", patience=cfg.train.patience,
                select_metric=cfg.select_metric(), validate=validate,
                log_path=(run_dir / "log.jsonl") if run_dir is not None else None, progress=progress,
            )
            ckpt = Checkpointer(run_dir) if run_dir is not None else None
            if ckpt is not None:
                every = cfg.train.checkpoint_every
                trainer = self.trainer

                def maybe_checkpoint(tr) -> None:
                    e = tr.state.epoch
                    due = (e % every == 0) if every else (tr.is_eval_epoch(e - 1) or tr.state.stopped)
                    if due:
                        ckpt.save(tr)

                trainer.on_epoch_end = maybe_checkpoint
                if resume:
                    done = ckpt.load(trainer)
                    log.info("resuming after epoch %d", done)
                    _truncate_log(run_dir / "log.jsonl", done)
            try:
                state = self.trainer.fit()
            except TrainingDiverged as exc:
                if run_dir is not None:
                    write_json(run_dir / "status.json", {"status": "diverged", "message": str(exc),
                                                         "resumable_from_epoch": _ckpt_epoch(ckpt)})
                raise
            self.trainer.restore_best()
            best_epoch = state.best_epoch
            valid_metrics = state.best_valid
        train_seconds = time.perf_counter() - t0
        test_metrics = valid_metrics if paper else run_eval(dataset.test, [dataset.train])
        epochs_run = self.trainer.state.epoch if self.trainer is not None else 0
        self.metrics = {
            "test": test_metrics,
            "valid": {} if paper else valid_metrics,
            "best_epoch": best_epoch,
            "k_max": ecfg.k_max,
            "protocol": cfg.train.protocol,
            "model": cfg.model,
            "dataset": dataset.name,
            "epochs_run": epochs_run,
            "train_seconds": round(train_seconds, 3),
            "seconds_per_epoch": round(train_seconds / epochs_run, 4) if epochs_run else 0.0,
            "selected_on": "test" if paper else "valid",
            "select_metric": cfg.select_metric(),
        }
        if run_dir is not None:
            self.save(run_dir)
            write_json(run_dir / "status.json", {"status": "finished"})
            if self.trainer is not None:
                Checkpointer(run_dir).remove()
        return self

    def _write_run_files(self, run_dir: Path, status: str) -> None:
        write_yaml(run_dir / "config.yaml", config_to_dict(self.config))
        write_json(run_dir / "id_maps.json", self.ids)
        write_json(run_dir / "environment.json",
                   environment(str(self.device), self.config.seed, getattr(self, "_fingerprint", "")))
        write_json(run_dir / "status.json", {"status": status})

    @classmethod
    def resume(cls, run_dir: str | Path, progress: bool = False) -> "Recommender":
        """Continue an interrupted run from its last checkpoint (same config, same data)."""
        from jnskr.data import load_dataset

        run_dir = Path(run_dir)
        status = read_json(run_dir / "status.json")
        if status.get("status") == "finished":
            raise JnskrError(f"{run_dir}: this run already finished; nothing to resume")
        cfg = validate_config(read_yaml(run_dir / "config.yaml"), str(run_dir / "config.yaml"))
        ds = load_dataset(cfg.data.path, format=cfg.data.format) if cfg.data.path else load_dataset(cfg.data.dataset)
        env = read_json(run_dir / "environment.json")
        if env.get("dataset_fingerprint") and env["dataset_fingerprint"] != ds.fingerprint():
            raise JnskrError(f"{run_dir}: the dataset changed since this run started (fingerprint "
                             f"{env['dataset_fingerprint']} != {ds.fingerprint()}); cannot resume")
        return cls(cfg).fit(ds, run_dir=run_dir, progress=progress, resume=True)

    # ---------------------------------------------------------------- queries
    def _user_index(self, users) -> torch.Tensor:
        if isinstance(users, torch.Tensor):
            return users.to(self.device)
        ids = self.ids.get("user_ids")
        lookup = {u: k for k, u in enumerate(ids)} if ids else None
        out = []
        for u in users:
            key = str(u)
            if lookup is None:
                if not key.isdigit() or int(key) >= self.ids["n_users"]:
                    raise JnskrError(f"unknown user {key!r}")
                out.append(int(key))
            elif key not in lookup:
                raise JnskrError(f"unknown user {key!r}")
            else:
                out.append(lookup[key])
        return torch.tensor(out, dtype=torch.long, device=self.device)

    def score(self, users) -> torch.Tensor:
        """Scores of every item for `users` (raw ids, or a LongTensor of dense ids).  -> [n, n_items]."""
        self._require_model()
        self.model.eval()
        return self.model.score(self._user_index(users))

    def recommend(self, user, k: int = 20, exclude_seen: bool = True) -> list[dict]:
        """Top-k items for one raw user id: [{"item", "score", "rank", "name"?}, ...]."""
        self._require_model()
        u = self._user_index([user])
        s = self.model.score(u)[0].clone()
        if exclude_seen and self.train_seen is not None:
            seen = self.train_seen.row(int(u[0]))
            s[torch.as_tensor(seen, dtype=torch.long, device=s.device)] = -torch.inf
        k = min(k, int(torch.isfinite(s).sum()))
        vals, idx = torch.topk(s, k)
        item_ids = self.ids.get("item_ids")
        names = self.ids.get("item_names")
        out = []
        for rank, (i, v) in enumerate(zip(idx.tolist(), vals.tolist()), start=1):
            row = {"rank": rank, "item": item_ids[i] if item_ids else str(i), "score": float(v)}
            if names:
                row["name"] = names[i]
            out.append(row)
        return out

    def _require_model(self) -> None:
        if self.model is None:
            raise JnskrError("the model is not trained or loaded: call fit() or Recommender.load()")

    # ------------------------------------------------------------ persistence
    def save(self, run_dir: str | Path) -> Path:
        self._require_model()
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_tensors(run_dir / "model.safetensors", dict(self.model.state_dict()))
        struct = {
            "train_indptr": torch.from_numpy(self.train_seen.indptr),
            "train_indices": torch.from_numpy(self.train_seen.indices),
            "item_counts": torch.from_numpy(np.asarray(self.item_counts, dtype=np.int64)),
        }
        if self.item_kg is not None:
            struct.update(_item_kg_tensors(self.item_kg))
        save_tensors(run_dir / "structure.safetensors", struct)
        write_yaml(run_dir / "config.yaml", config_to_dict(self.config))
        write_json(run_dir / "id_maps.json", self.ids)
        write_json(run_dir / "environment.json",
                   environment(str(self.device), self.config.seed, getattr(self, "_fingerprint", "")))
        if self.metrics:
            write_json(run_dir / "metrics.json", self.metrics)  # last: its presence marks a finished run
        return run_dir

    @classmethod
    def load(cls, run_dir: str | Path, device: str | None = None) -> "Recommender":
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise JnskrError(f"{run_dir}: no such run folder")
        cfg = validate_config(read_yaml(run_dir / "config.yaml"), str(run_dir / "config.yaml"))
        if device is not None:
            cfg = cfg.model_copy(update={"device": device})
        rec = cls(cfg)
        rec.device = resolve_device(cfg.device)
        rec.ids = read_json(run_dir / "id_maps.json")
        struct = load_tensors(run_dir / "structure.safetensors")
        n_users, n_items = rec.ids["n_users"], rec.ids["n_items"]
        rec.train_seen = Interactions(struct["train_indptr"].numpy(), struct["train_indices"].numpy(), n_items)
        rec.item_counts = struct["item_counts"].numpy()
        if "kg_indptr" in struct:
            rec.item_kg = _item_kg_from(struct, rec.ids.get("relation_names") or [])
        rec.model = rec._build_model(n_users, n_items, rec.item_counts)
        state = load_tensors(run_dir / "model.safetensors")
        try:
            rec.model.load_state_dict(state)
        except RuntimeError as exc:
            raise JnskrError(f"{run_dir / 'model.safetensors'}: does not match config.yaml ({exc})") from None
        rec.model.to(rec.device).eval()
        if (run_dir / "metrics.json").is_file():
            rec.metrics = read_json(run_dir / "metrics.json")
        return rec
