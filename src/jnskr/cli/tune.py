"""`jnskr tune`: Optuna search over a YAML space, selected on validation only (plain function;
`jnskr.cli.main` registers it)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from jnskr.cli.common import STATE, console, fixed, plain
from jnskr.cli.dataopts import FORMAT_HELP, with_data_options
from jnskr.errors import JnskrError

log = logging.getLogger("jnskr")


def _fmt(v) -> str:
    if isinstance(v, float):
        return "0" if v == 0 else f"{v:.4g}"
    from jnskr.tune import _flow

    return _flow(v)


def results_table(rows: list[dict], metric: str, keys: list[str], top: int) -> Table:
    t = Table(title=f"trials, best first (validation {metric}; test never evaluated)", title_justify="left")
    for col, just in (("trial", "right"), ("state", "left"), (f"valid {metric}", "right"), ("best epoch", "right"),
                      ("seconds", "right")):
        t.add_column(col, justify=just)
    for k in keys:  # on a narrow terminal a long key or value folds onto more lines, never ends in "…"
        t.add_column(plain(k), justify="right", overflow="fold")
    for r in rows[:top]:
        t.add_row(str(r["trial"]), r["state"], "-" if r["value"] is None else fixed(r["value"]),
                  str(r["best_epoch"] or "-"), "-" if r["seconds"] is None else f"{r['seconds']:.0f}",
                  *(plain(_fmt(r["params"][k])) if r["params"].get(k) is not None else "-" for k in keys))
    return t


def print_whole(table: Table) -> None:
    """Print `table` whole: piped (not a terminal) at its natural width, however wide, so no key
    name is cut at 80 columns; on a terminal at the terminal's width (long cells fold)."""
    if console.is_terminal:
        console.print(table)
        return
    width = Measurement.get(console, console.options.update_width(10_000), table).maximum
    Console(file=console.file, width=max(width, console.width), highlight=False).print(table)


def cap_note(trials) -> str | None:
    """A note when every completed trial was best at its last epoch: the epoch cap (train.epochs), not
    the search, bounded them.  `trials`: Optuna trials with the `best_epoch` / `epochs_run` attributes
    `jnskr.tune.run_trials` records (an early stop ends after the best epoch, so best == last means
    the run reached its cap)."""
    done = [t for t in trials if t.state.name == "COMPLETE" and t.user_attrs.get("epochs_run")]
    if not done or any(t.user_attrs.get("best_epoch") != t.user_attrs["epochs_run"] for t in done):
        return None
    caps = sorted({int(t.user_attrs["epochs_run"]) for t in done})
    cap = str(caps[0]) if len(caps) == 1 else f"{caps[0]}-{caps[-1]}"
    every = "the trial was" if len(done) == 1 else f"all {len(done)} trials were"
    return (f"note: {every} best at the last epoch ({cap} epochs): the epoch cap, not the search, bounded them; "
            f"raise it (--set train.epochs={2 * caps[-1]}) and tune again")


@with_data_options
def tune(
    space_file: Path = typer.Argument(..., metavar="SPACE", help="YAML search space (`space:` maps dotted config "
                                      "keys to a list of choices or {low, high, log, step}), or a shipped one: ials "
                                      "(ENMF around implicit's ALS, d to 512), jnskr (JNSKR over that region)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Registered dataset name (default: ml-100k)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Path to a dataset folder or file."),
    format: Optional[str] = typer.Option(None, "--format", help=FORMAT_HELP),  # noqa: A002
    preset: Optional[str] = typer.Option(None, "--preset", help="The preset trials start from (default: as "
                                         "`jnskr train` picks it)."),
    config: Optional[Path] = typer.Option(None, "--config", help="A YAML config file over the preset (`default`, "
                                          "--preset or its `preset:` key), as `jnskr train` layers it."),
    set_: list[str] = typer.Option([], "--set", help="Fixed override for every trial: --set train.epochs=40."),
    model: Optional[str] = typer.Option(None, "--model", help="A registered model (default: the preset's)."),
    trials: Optional[int] = typer.Option(None, "--trials", min=1, help="Finished trials the study should hold "
                                         "(default: the space's `trials:`, else 20); a resumed study runs the rest."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=1, help="Stop starting trials after this many "
                                            "seconds."),
    study: Optional[Path] = typer.Option(None, "--study", help="SQLite file of the study (default: "
                                         "tune/<space>-<dataset>.db); an existing one is resumed."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where the best configuration is written as a preset "
                                       "file (default: beside the study, <study>-best.yaml)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Let --out replace an existing file that is not a "
                                   "best configuration jnskr tune wrote (never an input of the command)."),
    seed: int = typer.Option(0, "--seed", help="Seed of Optuna's sampler."),
    top: int = typer.Option(20, "--top", min=1, help="Rows of the results table."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=1024,
                                          help="torch threads (default: one for small data, else every core up to 8)."),
    options: dict = None,
) -> None:
    """Search hyper-parameters with Optuna on the VALIDATION split (test never read); write the best as a preset."""
    from jnskr import tune as T
    from jnskr.cli.train import _flag_settings, _load_data, _pick_preset
    from jnskr.config import validate_config

    T._optuna()  # the install hint before any work
    if dataset and data:
        raise JnskrError("give either --dataset or --data, not both")
    space = T.load_space(space_file)
    extra = _flag_settings(model, device, threads, data, dataset, format, absolute=True, options=options)
    base = T.base_dict(preset or (None if config else _pick_preset(dataset, data)), config, extra,
                       [*space.sets, *set_])
    T.check_space(base, space)
    cfg = validate_config(base, "tune")
    ds = _load_data(cfg)
    name = ds.name
    study_path = study or Path("tune") / f"{space_file.stem}-{name}.db"
    out = out or study_path.with_name(study_path.stem + "-best.yaml")
    n_trials = trials or space.trials or 20
    T.check_best_out(out, config, study_path, space_file, overwrite)  # before the search (foreign: --overwrite)
    st = T.open_study(study_path, T.signature(space, base, ds.fingerprint()), seed)
    metric = cfg.train.select_metric
    done = len(T.finished(st))
    console.print(f"study {plain(study_path)}: {done} finished trial(s), running up to {n_trials}; {cfg.model} on "
                  f"{plain(name)}, selected on validation {metric}", highlight=False, soft_wrap=True)

    def on_trial(study_, t) -> None:
        best = T.best_trial(study_)
        value = "-" if t.value is None else fixed(t.value)
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in
                           ((p.key, T.param_value(p, t.params.get(p.key))) for p in space.params))
        console.print(f"trial {t.number} {t.state.name.lower()}: valid {metric} {value} ({params})"
                      + (f"  best {fixed(best.value)} (trial {best.number})" if best is not None else ""),
                      highlight=False, soft_wrap=True)

    level = log.level
    if not STATE["debug"]:
        log.setLevel(logging.WARNING)  # per-trial training lines would drown the trial lines
    try:
        T.run_trials(st, space, base, ds, n_trials, timeout=timeout, on_trial=on_trial)
    finally:
        log.setLevel(level)
    rows = T.rows(st, space)
    print_whole(results_table(rows, metric, [p.key for p in space.params], top))
    note = cap_note(T.finished(st))
    if note is not None:
        console.print(note, highlight=False, soft_wrap=True)
    best = T.best_trial(st)
    if best is None:
        raise JnskrError(f"{study_path}: no trial finished; nothing to write")
    T.write_best(out, T.best_preset(base, space, best, metric, name, study_path, len(rows), out), overwrite)
    console.print(f"best: trial {best.number}, validation {metric} {fixed(best.value)}; wrote {plain(out)} "
                  f"(train it: jnskr train --config {plain(out)})", highlight=False, soft_wrap=True)
