"""Optional experiment tracking of a training run, in local files only:

* ``tensorboard``: event files in ``<run folder>/tensorboard/`` (``tensorboard --logdir runs``);
  needs the ``tensorboard`` package.
* ``mlflow``: a local SQLite store ``mlflow.db`` beside the run folder (``mlflow ui
  --backend-store-uri sqlite:///runs/mlflow.db``), experiment ``jnskr``; needs ``mlflow``.

A tracker is a progress object (`jnskr.training.trainer.Progress`): it records the loss, the
training seconds and every validation metric per epoch (refit epochs under ``refit/``), then
`finish(metrics)` adds the flattened config and the test metrics and closes the run.
"""

from __future__ import annotations

import math
from pathlib import Path

from jnskr.errors import JnskrError

TRACKERS = ("tensorboard", "mlflow")


def flatten(d: dict, prefix: str = "") -> dict:
    """A nested config as dotted keys with plain scalar values (lists as text)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif v is None or isinstance(v, (bool, int, float, str)):
            out[key] = v
        else:
            out[key] = str(v)
    return out


def epoch_scalars(record: dict, phase: int) -> dict[str, float]:
    """The figures of one epoch record: loss, seconds, validation metrics."""
    prefix = "" if phase == 0 else "refit/"
    out = {}
    for key in ("loss", "seconds"):
        v = record.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            out[prefix + key] = float(v)
    for k, v in (record.get("valid") or {}).items():
        out[f"valid/{k}"] = float(v)
    return out


class _Tracker:
    watches_validation = False

    def __init__(self):
        self.phase = -1

    def start(self, done_epochs: int, total_epochs: int, batches_per_epoch: int) -> None:
        self.phase += 1

    def batch(self, epoch: int, loss: float) -> None:
        pass

    def epoch_end(self, record: dict) -> None:
        self.log(epoch_scalars(record, max(self.phase, 0)), int(record["epoch"]))

    def close(self) -> None:
        pass


class TensorBoardTracker(_Tracker):
    def __init__(self, log_dir: str | Path, config: dict):
        super().__init__()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise JnskrError("--tracker tensorboard needs the tensorboard package: pip install tensorboard") from None
        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        self.config = flatten(config)
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in self.config.items()))

    def log(self, scalars: dict[str, float], step: int) -> None:
        for k, v in scalars.items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def finish(self, metrics: dict) -> None:
        for k, v in (metrics.get("test") or {}).items():
            self.writer.add_scalar(f"test/{k}", float(v), metrics.get("best_epoch", 0))
        self.writer.close()

    def abort(self) -> None:
        self.writer.close()

    def where(self) -> str:
        return f"TensorBoard events in {self.log_dir} (tensorboard --logdir {self.log_dir.parent.parent})"


def _mlflow_key(key: str) -> str:
    return key.replace("@", "_at_")


class MLflowTracker(_Tracker):
    def __init__(self, store_dir: str | Path, config: dict, run_name: str):
        super().__init__()
        try:
            import mlflow
        except ImportError:
            raise JnskrError("--tracker mlflow needs the mlflow package: pip install mlflow") from None
        self.mlflow = mlflow
        self.store_dir = Path(store_dir).resolve()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.uri = f"sqlite:///{self.store_dir / 'mlflow.db'}"
        mlflow.set_tracking_uri(self.uri)
        if mlflow.get_experiment_by_name("jnskr") is None:
            mlflow.create_experiment("jnskr", artifact_location=(self.store_dir / "mlartifacts").as_uri())
        mlflow.set_experiment("jnskr")
        self.run = mlflow.start_run(run_name=run_name)
        params = {_mlflow_key(k): ("null" if v is None else v) for k, v in flatten(config).items()}
        mlflow.log_params(params)

    def log(self, scalars: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics({_mlflow_key(k): v for k, v in scalars.items()}, step=step)

    def finish(self, metrics: dict) -> None:
        test = {_mlflow_key(f"test/{k}"): float(v) for k, v in (metrics.get("test") or {}).items()}
        test["best_epoch"] = float(metrics.get("best_epoch", 0))
        self.mlflow.log_metrics(test)
        self.mlflow.end_run()

    def abort(self) -> None:
        self.mlflow.end_run(status="FAILED")

    def where(self) -> str:
        return f"MLflow run {self.run.info.run_id} in {self.uri} (mlflow ui --backend-store-uri {self.uri})"


def make_tracker(tracker: str | None, run_dir: str | Path, config: dict):
    """`tracker` (None, ``tensorboard`` or ``mlflow``) for a run written to `run_dir`."""
    if tracker is None:
        return None
    run_dir = Path(run_dir)
    makers = {"tensorboard": lambda: TensorBoardTracker(run_dir / "tensorboard", config),
              "mlflow": lambda: MLflowTracker(run_dir.parent, config, run_name=run_dir.name)}
    if tracker not in makers:
        raise JnskrError(f"--tracker {tracker!r}: expected one of {', '.join(TRACKERS)}")
    return makers[tracker]()
