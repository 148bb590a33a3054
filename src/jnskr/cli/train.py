"""`jnskr train` and `jnskr evaluate` (plain functions; `jnskr.cli.main` registers them)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from jnskr.cli.common import CHECKPOINT, console, plain
from jnskr.cli.dataopts import FORMAT_HELP, given, reader_options, with_data_options
from jnskr.errors import JnskrError

log = logging.getLogger("jnskr")


METRIC_COLUMNS = [("recall", "Recall"), ("ndcg", "NDCG"), ("ndcg_kgat", "NDCG legacy"),
                  ("precision", "Precision"), ("hit", "Hit")]


def metrics_table(metrics: dict, title: str, ks: list[int]) -> Table:
    """One row per (split, K), one column per metric; NDCG is standard, "NDCG legacy" the
    KGAT variant of the paper's tables."""
    t = Table(title=title, title_justify="left")
    t.add_column("split @K")
    for _, label in METRIC_COLUMNS:
        t.add_column(label, justify="right")
    for split in ("test", "valid"):
        values = metrics.get(split) or {}
        for k in ks:
            if f"recall@{k}" not in values:
                continue
            cells = [values.get(f"{key}@{k}") for key, _ in METRIC_COLUMNS]
            t.add_row(f"{split} @{k}", *("-" if v is None else f"{v:.4f}" for v in cells))
    return t


def _flag_settings(model: str | None, device: str | None, threads: int | None, data: Path | None,
                   dataset: str | None, format: str | None, absolute: bool = False,  # noqa: A002
                   options: dict | None = None) -> dict:
    """The config keys that command-line flags set (`extra` of `build_config`): model, device,
    threads and the data (a path, `absolute` or as typed, with its format; or a dataset name; and
    the data options, `jnskr.cli.dataopts`)."""
    from jnskr.cli.dataopts import data_section

    extra: dict = {}
    if model:
        extra["model"] = model
    if device:
        extra["device"] = device
    if threads:
        extra["threads"] = threads
    if data is not None:
        if not data.exists():
            raise JnskrError(f"{data}: no such file or folder")
        path = str(data.resolve()) if absolute else str(data)
        extra["data"] = {"path": path, "dataset": None, **({"format": format} if format else {})}
    elif dataset:
        extra["data"] = {"dataset": dataset}
    if section := data_section(options):
        extra["data"] = {**extra.get("data", {}), **section}
    return extra


def _pick_preset(dataset: str | None, data: Path | None) -> str:
    from jnskr.config import preset_names

    name = data.name if data is not None else (dataset or "ml-100k")  # ml-100k: the default dataset
    return name if name in preset_names() else "default"


def _load_data(cfg):
    from jnskr.data.registry import load_configured

    return load_configured(cfg.data)


def _progress(tracker=None):
    from jnskr.cli.progress import make_progress

    return make_progress(tracker)


def _preset_help() -> str:
    from jnskr.presets import names

    return (f"A shipped preset: {', '.join(names())} (`jnskr presets` describes them). Default: the preset "
            "named like the --data folder or --dataset, else `default`.")


def _model_help() -> str:
    from jnskr.models import MODELS

    return f"A registered model: {', '.join(MODELS)}."


@with_data_options
def train(
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Registered dataset name (default: ml-100k)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Path to a dataset folder or file."),
    format: Optional[str] = typer.Option(None, "--format", help=FORMAT_HELP),  # noqa: A002
    config: Optional[Path] = typer.Option(None, "--config", help="A YAML config file over the preset (`default`, --preset or its `preset:` key)."),
    preset: Optional[str] = typer.Option(None, "--preset", help=_preset_help()),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: --set jnskr.c0=500 (repeatable)."),
    model: Optional[str] = typer.Option(None, "--model", help=_model_help()),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/<dataset>-<model>-<time>)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted run folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Let --out name a folder that holds files "
                                   "(its run files are replaced; other files stay)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=1024,
                                          help="torch threads (default: one for small data, else every core up to 8)."),
    tracker: Optional[str] = typer.Option(None, "--tracker", help="Also log to tensorboard (<run>/tensorboard/) or "
                                          "mlflow (a local SQLite store beside the run folder)."),
    budget: Optional[str] = typer.Option(None, "--budget", help="Tune on validation within this wall time (90s, "
                                         "15m, 1.5h), then train the best setting: every trial in tuning.json."),
    space: Optional[str] = typer.Option(None, "--space", help="With --budget: the search space (a YAML file, or "
                                        "ials / jnskr; default: the model's shipped one)."),
    options: dict = None,
) -> None:
    """Train a model, evaluate it on the test split and save the run folder (the data flags
    `--interactions`, `--user-col`, ... read your files as `jnskr data validate` does)."""
    from jnskr.api import Recommender
    from jnskr.config import build_config

    if resume is not None:
        if threads:
            from jnskr.threads import set_threads

            set_threads(threads)
        if dataset or data or config or preset or set_ or model or out or tracker or overwrite or budget or space \
                or given(options):
            raise JnskrError("--resume takes only the run folder: the run keeps its own config and data")
        if not resume.is_dir():
            raise JnskrError(f"{resume}: no such run folder")
        lock = _claim(resume, None, doing="resuming")  # one process resumes a run at a time
        try:
            rec = Recommender.resume(resume, progress=_progress())
        finally:
            if lock is not None:
                lock.release()
        _print_result(rec, rec.ids.dataset)
        console.print(f"run saved to {plain(resume)}", highlight=False)
        return

    if dataset and data:
        raise JnskrError("give either --dataset or --data, not both")
    if space is not None and budget is None:
        raise JnskrError("--space chooses what --budget searches: give --budget too")
    if budget is not None:
        from jnskr.budget import parse_budget

        parse_budget(budget)  # a bad duration is an error before anything is loaded
    lock = _claim(out, overwrite) if out is not None else None  # before anything is loaded
    try:
        extra = _flag_settings(model, device, threads, data, dataset, format, options=options)
        cfg = build_config(preset=preset or (None if config else _pick_preset(dataset, data)), file=config,
                           overrides=list(set_), extra=extra)
        ds = _load_data(cfg)
        if out is None:
            out, lock = _claim_default(Path("runs") / f"{ds.name}-{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}",
                                       overwrite)
        _fit(Recommender, cfg, ds, ds.name, out, tracker, budget, space)
    finally:
        if lock is not None:
            lock.release()


def _fit(Recommender, cfg, ds, name: str, out: Path, tracker, budget=None, space=None) -> None:  # noqa: N803
    log.info("training %s on %s (%d users, %d items, %d train pairs) -> %s", cfg.model, name, ds.n_users,
             ds.n_items, ds.train.nnz, out)
    from jnskr.config import config_to_dict
    from jnskr.tracking import make_tracker

    track = make_tracker(tracker, out, config_to_dict(cfg))
    try:
        rec = Recommender(cfg).fit(ds, run_dir=out, progress=_progress(track), budget=budget, space=space)
    except BaseException:
        if track is not None:
            track.abort()
        raise
    if track is not None:
        track.finish(rec.metrics)
        console.print(track.where(), highlight=False)
    _print_result(rec, name)
    console.print(f"run saved to {plain(out)}  (jnskr report {plain(out)}: learning curves and a summary)",
                  highlight=False)


def _claim(out: Path, overwrite: bool | None, doing: str = "writing"):
    """Lock the run folder `out` (`jnskr.locks`), then check under the lock that it is a place
    for a new run folder (`jnskr.runs.check_out`; `overwrite` None: no check, a resumed run) ->
    the lock.  Under torchrun only rank 0 writes, so only rank 0 claims (another rank would find
    rank 0's folder): the others get None."""
    from jnskr.locks import claim
    from jnskr.parallel import world_from_env
    from jnskr.runs import check_out

    if world_from_env()[0] != 0:
        return None
    return claim(out, None if overwrite is None else (lambda p: check_out(p, overwrite)), doing)


def _claim_default(base: Path, overwrite: bool):
    """The default run folder `base` (or `base-2`, ... when taken) -> (folder, its lock)."""
    from jnskr.locks import claim_new
    from jnskr.parallel import world_from_env
    from jnskr.runs import check_out

    if world_from_env()[0] != 0:
        return base, None
    return claim_new(base, lambda p: check_out(p, overwrite))


def _print_result(rec, name: str) -> None:
    m, cfg = rec.metrics, rec.config
    title = (f"{cfg.model} on {name}: test (full ranking, train items masked), best epoch {m['best_epoch']}, "
             f"protocol {m['protocol']}, {m['epoch_mean_seconds']:.3f} s/epoch")
    console.print(metrics_table(m, plain(title), cfg.eval.ks))


@with_data_options
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run folder written by `jnskr train`."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Evaluate on this registered dataset."),
    data: Optional[Path] = typer.Option(None, "--data", help="Evaluate on this dataset path."),
    format: Optional[str] = typer.Option(None, "--format", help=FORMAT_HELP),  # noqa: A002
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda (default: the run's)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=1024,
                                          help="torch threads (default: one for small data, else every core up to 8)."),
    checkpoint: str = CHECKPOINT,
    options: dict = None,
) -> None:
    """Evaluate a saved run on the test split of its dataset (or another with the same ids)."""
    from jnskr.api import Recommender
    from jnskr.data import load_dataset
    from jnskr.evaluation import evaluate as run_evaluate

    from jnskr.threads import set_threads

    rec = Recommender.load(run_dir, device=device, checkpoint=checkpoint)
    ids = rec.ids
    set_threads(threads, rec.train_seen.nnz, ids.n_users + ids.n_items)
    cfg = rec.config
    opts = reader_options(options)
    if data is not None:
        ds = load_dataset(str(data), format=format, **opts)
    elif dataset is not None:
        ds = load_dataset(dataset, **opts)
    elif given(options):
        raise JnskrError(f"{', '.join(given(options))}: read files named with --data PATH (without it the run's "
                         "own data is read as it was configured)")
    else:
        ds = _load_data(cfg)
    if (ds.n_users, ds.n_items) != (ids.n_users, ids.n_items):
        raise JnskrError(f"dataset {ds.name} has {ds.n_users} users x {ds.n_items} items but the run was "
                         f"trained on {ids.n_users} x {ids.n_items}")
    rec.model.eval()
    rec.model.prepare_scoring()
    res = run_evaluate(rec.model, ds.test, [ds.train], ks=cfg.eval.ks, k_max=cfg.eval.k_max,
                       batch_size=cfg.eval.batch_size)
    console.print(metrics_table({"test": res.metrics}, plain(f"{cfg.model} from {run_dir} on {ds.name} "
                                                             f"({res.n_users} test users)"), cfg.eval.ks))
