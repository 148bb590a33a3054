"""The public model API: `Recommender(config).fit(dataset)`, then `recommend`, `explain`,
`similar`, `recommend_for_history`, `predict`, `score`, `save`, `load`.

Raw ids in, raw ids out; dense integer ids inside (`jnskr.ids.IdMaps`).  Training is
`jnskr.pipeline.run`; queries run on a `jnskr.query.Catalog` built on first use.

    rec = Recommender(build_config("ml-100k")).fit(load_dataset("ml-100k"))
    ids, scores = rec.recommend(["196", "22"], k=10)     # arrays [2, 10]
    ids, scores = rec.recommend("196", k=10)              # arrays [10]
    rec.explain("196", ids[0]).facts                       # KG facts behind the score (JNSKR)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from jnskr import pipeline, saved
from jnskr.coldstart import DEFAULT_RIDGE, NewItems
from jnskr.config import Config, build_config, config_to_dict, validate_config
from jnskr.data.dataset import Dataset
from jnskr.errors import JnskrError
from jnskr.explain import Explanation, Names, explanations
from jnskr.ids import IdMaps, UnknownItem, lookup_indices
from jnskr.query import Catalog
from jnskr.runs import RunFolder

log = logging.getLogger("jnskr")


__all__ = ["Recommender", "Explanation"]


class Recommender:
    """A configured model, trained with `fit` (or loaded), queried by raw ids."""

    def __init__(self, config: Config | dict | None = None, **overrides):
        if config is None:
            config = build_config("default")
        elif isinstance(config, dict):
            config = validate_config(config)
        if overrides:
            layers = config.layers()
            config = validate_config({**config_to_dict(config, as_given=True), **overrides})
            config._layers = [*layers, "keyword overrides (" + ", ".join(overrides) + ")"]
        self.config: Config = config
        self._run: saved.RunResult | None = None
        self._catalog: Catalog | None = None
        self._new_items: NewItems | None = None
        self.ridge = DEFAULT_RIDGE
        self.dropout_aware = True
        self.tuning = None  # what `fit(budget=...)` searched (`jnskr.budget.Tuning`)

    # ------------------------------------------------------------- training
    def fit(self, dataset: Dataset, run_dir: str | Path | None = None, progress="auto",
            resume: bool = False, budget: str | float | None = None, space: str | None = None) -> "Recommender":
        """Train and evaluate on `dataset` (protocol from the config); write `run_dir` if given.

        `progress`: ``"auto"`` (the default; `jnskr.progress.default_progress`): where a person
        watches (Jupyter, or stderr on a terminal) a bar, as the CLI shows one; elsewhere (pipes,
        nohup, CI) a plain line on the ``jnskr`` logger every 30 s, which shows where the application
        configured logging (``logging.basicConfig(level="INFO")``); ``True``: the bar anywhere;
        ``False``/None: nothing; or an object with the `jnskr.training.trainer.Progress` methods.
        A warning tells when validation keeps falling after the first evaluations (the config's
        settings may not suit the data; the warning names its layers, `Config.layers()`).

        `budget` (seconds, or ``"90s"``, ``"15m"``, ``"1.5h"``): first tune on the validation
        holdout within that wall time over `space` (a YAML file or a shipped space; default the
        model's, `jnskr.budget`), then train the best setting; `self.tuning` records every trial
        (``tuning.json`` in `run_dir`), and `self.config` becomes the chosen config."""
        from jnskr.progress import default_progress

        if budget is not None:
            from jnskr.budget import fit_within_budget

            if resume:
                raise JnskrError("fit: resume continues a run as it was configured; it takes no budget")
            return fit_within_budget(self, dataset, budget, run_dir, progress, space)

        self._run = pipeline.run(self.config, dataset, run_dir, resume=resume,
                                 progress=default_progress(progress, self.config.layers()))
        self.config = self._run.config  # what ran (defaults worked out again if keys were set since)
        self._catalog = None
        return self

    @classmethod
    def resume(cls, run_dir: str | Path, progress=None) -> "Recommender":
        """Continue an interrupted run from its last checkpoint (same config, same data)."""
        from jnskr.data.registry import load_configured

        folder = RunFolder(run_dir)
        status = folder.read_status()
        if status.get("status") == "finished":
            raise JnskrError(f"{folder.path}: this run already finished; nothing to resume")
        cfg = validate_config(folder.read_config(), str(folder.file("config.yaml")))
        ds = load_configured(cfg.data)
        env = folder.read_environment()
        cfg._layers = list(env.get("config_layers") or [])
        if env.get("dataset_fingerprint") and env["dataset_fingerprint"] != ds.fingerprint():
            raise JnskrError(f"{folder.path}: the dataset changed since this run started (fingerprint "
                             f"{env['dataset_fingerprint']} != {ds.fingerprint()}); cannot resume")
        return cls(cfg).fit(ds, run_dir=folder.path, progress=progress, resume=True)

    # ---------------------------------------------------------- persistence
    def save(self, run_dir: str | Path) -> Path:
        """Write the trained model to the run folder `run_dir` (created if needed) -> its path.

        The folder is what `jnskr train --out` writes and what `load`, the CLI (`evaluate`,
        `recommend`, `serve`, `export`) and `jnskr.serve` read: the weights as safetensors, the
        config as YAML, the id maps, metrics and training history as JSON (no pickle).  The
        cold-start items of `with_queries` are not saved."""
        run = self._require()
        folder = RunFolder(run_dir)
        saved.save(folder, run)
        return folder.path

    @classmethod
    def load(cls, run_dir: str | Path, device: str | None = None, checkpoint: str = "final") -> "Recommender":
        """A trained model from a run folder (written by `fit(run_dir=...)`, `save` or `jnskr train`),
        ready to query.  `device`: where the model is placed (``"cpu"``, ``"cuda"``, ...; default:
        the run's config).  `checkpoint="best"`: the best validation weights of model selection
        from the run's checkpoint (an interrupted run too), not the finished (refit) model.  Nothing
        is unpickled: a corrupt or foreign folder is a `JnskrError` naming the file."""
        run = saved.load(run_dir, device, checkpoint)
        rec = cls(run.config)
        rec._run = run
        return rec

    # ---------------------------------------------------------------- state
    def _require(self) -> saved.RunResult:
        if self._run is None:
            raise JnskrError("the model is not trained or loaded: call fit() or Recommender.load()")
        return self._run

    @property
    def model(self):
        return self._run.model if self._run is not None else None

    @property
    def metrics(self) -> dict:
        return self._run.metrics if self._run is not None else {}

    @property
    def trainer(self):
        return self._run.trainer if self._run is not None else None

    @property
    def ids(self) -> IdMaps:
        return self._require().ids

    @property
    def item_kg(self):
        return self._require().item_kg

    @property
    def device(self) -> torch.device:
        return self._require().device

    @property
    def train_seen(self):
        """Every training interaction (`Interactions`): what `recommend` leaves out by default."""
        return self._require().train_seen

    @property
    def item_counts(self) -> np.ndarray:
        return self._require().item_counts

    def catalog(self) -> Catalog:
        """The query engine (built on first use)."""
        if self._catalog is None:
            run = self._require()
            self._catalog = Catalog(run.model, run.train_seen, run.item_counts, run.ids.n_items, self._new_items,
                                    ridge=self.ridge, dropout_aware=self.dropout_aware)
        return self._catalog

    def with_queries(self, new_items: NewItems | None = None, ridge: float = DEFAULT_RIDGE,
                     dropout_aware: bool = True) -> "Recommender":
        """A view of this trained model with other query options (the model is shared): cold-start
        `new_items` (known only by KG facts) added to the catalogue, and the fold-in options of
        `jnskr.coldstart` (the relative ridge; whether the expected dropout term enters)."""
        if ridge < 0:
            raise JnskrError(f"ridge must be >= 0, not {ridge}")
        other = Recommender(self.config)
        other._run = self._require()
        other._new_items = new_items if new_items is not None and len(new_items) else None
        other.ridge, other.dropout_aware = float(ridge), bool(dropout_aware)
        return other

    @property
    def item_ids(self) -> np.ndarray:
        """Raw ids of the catalogue (str array [n]; index k is catalogue item k, as in
        `Dataset.item_ids`): the run's items, then cold-start items."""
        return np.asarray(self._catalog_ids(), dtype=str)

    def _catalog_ids(self) -> list[str]:
        return self.ids.items() + (self._new_items.ids if self._new_items else [])

    def item_index(self, raws, where: str = "") -> np.ndarray:
        """Catalogue indices of raw item ids (cold-start items included)."""
        if not self._new_items:
            return self.ids.item_index(raws, where)
        lookup = {r: k for k, r in enumerate(self._catalog_ids())}
        return lookup_indices(lookup, raws, UnknownItem, "item", where)

    def _raw_items(self, idx: np.ndarray) -> np.ndarray:
        names = np.asarray(self._catalog_ids() + [None], dtype=object)  # -1 -> None
        return names[idx]

    # -------------------------------------------------------------- queries
    def score(self, users) -> np.ndarray:
        """Scores of every item of the run for `users` -> float32 array [n, n_items] (one raw id:
        [n_items]).  `users`: raw ids, or dense ids as an integer torch tensor.  Column i is the
        run's item i (raw id ``item_ids[i]``)."""
        run = self._require()
        run.model.eval()
        single = isinstance(users, (str, int, np.integer))
        if isinstance(users, torch.Tensor):
            idx = users.to(run.device)
        else:
            idx = torch.as_tensor(self.ids.user_index([users] if single else list(users)), device=run.device)
        with torch.no_grad():
            out = run.model.score(idx).float().cpu().numpy()
        return out[0] if single else out

    def predict(self, users, items) -> np.ndarray:
        """Scores of (user, item) pairs given as two equally long lists of raw ids.  -> float32 [n]."""
        users, items = list(users), list(items)
        if len(users) != len(items):
            raise JnskrError(f"predict: {len(users)} users but {len(items)} items")
        cat = self.catalog()
        u = torch.as_tensor(self.ids.user_index(users), device=cat.device)
        i = torch.as_tensor(self.item_index(items), device=cat.device)
        out = np.empty(len(users), dtype=np.float32)
        for lo in range(0, len(users), 1024):
            s = cat.scores_users(u[lo:lo + 1024])
            out[lo:lo + 1024] = s.gather(1, i[lo:lo + 1024, None])[:, 0].float().cpu().numpy()
        return out

    def recommend(self, users, k: int = 20, exclude_seen: bool = True, items=None,
                  batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items for raw user ids.

        Args:
            users: one raw id -> arrays of shape [k]; a list of raw ids -> arrays [n, k].
            k: list length (capped at the catalogue size).
            exclude_seen: leave out each user's training items.
            items: optional raw item ids: rank only these.
        Returns:
            (item ids: object array of raw ids, scores: float32 array); where a user has fewer
            than k candidates the row ends with None ids and -inf scores.
        """
        single = isinstance(users, (str, int, np.integer))
        raws = [users] if single else list(users)
        cat = self.catalog()
        cand = cat.candidates_mask(self.item_index(list(items), "items: ")) if items is not None else None
        idx, scores = cat.recommend_users(self.ids.user_index(raws), k, exclude_seen, cand, batch_size)
        out = self._raw_items(idx), scores
        return (out[0][0], out[1][0]) if single else out

    def recommend_frame(self, users, k: int = 20, exclude_seen: bool = True, items=None):
        """`recommend` as a pandas DataFrame with columns user, item, rank, score, item_name (one
        row per recommendation; item_name is None where the dataset has no names)."""
        try:
            import pandas as pd
        except ImportError:
            raise JnskrError("recommend_frame needs pandas: pip install pandas") from None
        raws = [users] if isinstance(users, (str, int, np.integer)) else list(users)
        ids, scores = self.recommend(raws, k=k, exclude_seen=exclude_seen, items=items)
        keep = ids != None  # noqa: E711  (a user with fewer than k candidates)
        names = dict(zip(self.ids.items(), self.ids.item_names or []))
        rows_user = np.repeat(np.asarray([str(u) for u in raws], dtype=object), ids.shape[1]).reshape(ids.shape)
        ranks = np.broadcast_to(np.arange(1, ids.shape[1] + 1), ids.shape)
        item = ids[keep]
        return pd.DataFrame({"user": rows_user[keep], "item": item, "rank": ranks[keep],
                             "score": scores[keep].astype(np.float64),
                             "item_name": [names.get(i) or None for i in item]})

    def recommend_for_history(self, items, k: int = 20, exclude_history: bool = True,
                              candidates=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k for a new user given raw ids of items they liked (fold-in, no retraining).
        -> (ids [k], scores [k])."""
        cat = self.catalog()
        cand = cat.candidates_mask(self.item_index(list(candidates), "items: ")) if candidates is not None else None
        _, idx, scores = cat.recommend_history(self.item_index(list(items), "history: "), k, exclude_history, cand)
        return self._raw_items(idx[0]), scores[0]

    def similar(self, item, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The k items nearest to `item` by cosine similarity of the item vectors q_v.
        -> (ids [k], cosines [k])."""
        idx, scores = self.catalog().similar(int(self.item_index([item])[0]), k)
        return self._raw_items(idx[0]), scores[0]

    def explain(self, user, item, top: int = 10) -> Explanation:
        """The exact decomposition of the score of (user, item) by the item's KG facts:
        ``base + Σ contributions of facts + rest == score`` (models with KG facts only)."""
        cat = self.catalog()
        facts = cat.facts()
        u = self.ids.user_index([user])
        i = self.item_index([item])
        p = cat.user_vectors(u)
        ex = facts.explain(p, torch.as_tensor(i, device=cat.device), top)
        return explanations(ex, self.names(), [str(user)], [str(item)])[0]

    def names(self) -> Names:
        return Names(self.ids, self.item_kg.tail_entity if self.item_kg is not None else None)
