"""Hyper-parameter search with Optuna, selected on the VALIDATION split only.

A search space is YAML: dotted config keys mapped to a list of choices or a range::

    space:
      jnskr.c0: [100, 300, 800]                          # choices (any YAML values)
      jnskr.keep_prob: [[0.3, 0.3], [0.5, 0.5]]
      jnskr.lambda_emb: {low: 1.0e-4, high: 0.1, log: true}   # a float range
      jnskr.embed_dim: {low: 16, high: 64, step: 16}     # an int range (integer bounds)
    set: [train.epochs=60]                               # fixed overrides (optional)
    trials: 20                                           # optional

Each trial trains with ``protocol: standard`` (selection on the validation holdout of train), no
refit and no test evaluation: the test split is never read.  The study lives in a SQLite file, so
an interrupted search resumes where it stopped; the best configuration is written out as a
commented preset file for ``jnskr train --config``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from jnskr.config import Config, layered_dict, validate_config
from jnskr.errors import ConfigError, JnskrError
from jnskr.studies import (  # noqa: F401 - the study side, re-exported for the CLI
    BEST_MARK, INTERRUPTED, OPTUNA_HINT, OWNER, best_trial, check_best_out, db_errors, finished, kept_message,
    open_study, optuna_module, owner, quiet_optuna, running_elsewhere, write_best)

log = logging.getLogger("jnskr")


def _optuna():
    return optuna_module()


@dataclass
class Param:
    key: str
    choices: list | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @property
    def is_int(self) -> bool:
        return self.choices is None and all(isinstance(v, int) and not isinstance(v, bool)
                                            for v in (self.low, self.high) + ((self.step,) if self.step else ()))

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(_flow(c) for c in self.choices)
        return f"{'int' if self.is_int else 'float'} in [{self.low}, {self.high}]" + (" log" if self.log else "") \
            + (f" step {self.step}" if self.step else "")

    def bounds(self) -> list:
        return list(self.choices) if self.choices is not None else [self.low, self.high]


@dataclass
class SearchSpace:
    params: list[Param]
    sets: list[str] = field(default_factory=list)
    trials: int | None = None
    source: str = ""


def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def parse_space(doc: dict, where: str = "search space") -> SearchSpace:
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping with a `space:` section")
    unknown = set(doc) - {"space", "set", "trials"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} (expected space, set, trials)")
    space = doc.get("space")
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{where}: `space:` must map dotted config keys to a list of choices or a range")
    params = []
    for key, spec in space.items():
        if isinstance(spec, list):
            if not spec:
                raise ConfigError(f"{where}: {key}: an empty list of choices")
            params.append(Param(str(key), choices=spec))
        elif isinstance(spec, dict):
            extra = set(spec) - {"low", "high", "log", "step"}
            if extra or "low" not in spec or "high" not in spec:
                raise ConfigError(f"{where}: {key}: a range is {{low: .., high: .., log: false, step: null}}")
            params.append(_range(f"{where}: {key}", str(key), spec))
        else:
            raise ConfigError(f"{where}: {key}: expected a list of choices or {{low: .., high: ..}}, not {spec!r}")
    sets = doc.get("set") or []
    if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
        raise ConfigError(f"{where}: `set:` must be a list of key=value strings")
    trials = doc.get("trials")
    if trials is not None and (not isinstance(trials, int) or isinstance(trials, bool) or trials < 1):
        raise ConfigError(f"{where}: `trials:` must be a positive integer")
    return SearchSpace(params, sets, trials)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _range(where: str, key: str, spec: dict) -> Param:
    """A checked {low, high, log, step}: every combination Optuna would refuse mid-search is a
    `ConfigError` here."""
    low, high, step, use_log = spec["low"], spec["high"], spec.get("step"), spec.get("log", False)
    if not (_number(low) and _number(high)) or low >= high:
        raise ConfigError(f"{where}: a range needs finite numbers low < high (got {low!r}, {high!r})")
    if not isinstance(use_log, bool):
        raise ConfigError(f"{where}: log must be true or false (got {use_log!r})")
    if use_log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0")
    if step is not None:
        if not _number(step) or step <= 0:
            raise ConfigError(f"{where}: step must be a positive number (got {step!r})")
        if step > high - low:
            raise ConfigError(f"{where}: step {step} is wider than the range [{low}, {high}]")
    p = Param(key, low=low, high=high, log=use_log, step=step)
    if use_log and step is not None and not (p.is_int and step == 1):
        raise ConfigError(f"{where}: a log range takes no step (Optuna samples it continuously)")
    return p


def load_space(path: str | Path) -> SearchSpace:
    """A search space file, or a shipped space by name (`jnskr.spaces`: ials, jnskr) when no file
    of that name exists."""
    from jnskr import spaces

    p = Path(path)
    if not p.is_file() and str(path) in spaces.names():
        source = spaces.text(str(path))
        space = parse_space(yaml.safe_load(source), f"space {path}")
        space.source = source
        return space
    if not p.is_file():
        raise ConfigError(f"{p}: search space file not found (shipped spaces: {', '.join(spaces.names())})")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    space = parse_space(doc, str(p))
    space.source = p.read_text()
    return space


def set_dotted(d: dict, key: str, value) -> dict:
    cur = d
    parts = key.split(".")
    for part in parts[:-1]:
        nxt = cur.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{key}: {part!r} is not a section")
        cur = nxt
    cur[parts[-1]] = value
    return d


def base_dict(preset: str | None, file: str | Path | None, extra: dict | None, overrides: list[str]) -> dict:
    """The raw (unvalidated) config the trials start from, layered as `jnskr train` layers it
    (`jnskr.config.layered_dict`): the preset (`preset`, else the file's ``preset:`` key, else
    ``default``) <- the file <- the data and other flags <- the overrides."""
    return layered_dict(preset, file, overrides, extra).values


def trial_config(base: dict, values: dict) -> Config:
    import copy

    d = copy.deepcopy(base)
    for k, v in values.items():
        set_dotted(d, k, v)
    cfg = validate_config(d, "tune")
    if cfg.train.protocol != "standard":
        raise ConfigError("jnskr tune selects on validation only: train.protocol must be standard")
    return cfg


def check_space(base: dict, space: SearchSpace) -> None:
    """Fail before the first trial when a choice or a bound is not a valid value of its key."""
    trial_config(base, {})
    for p in space.params:
        for v in p.bounds():
            try:
                trial_config(base, {p.key: v})
            except ConfigError as exc:
                raise ConfigError(f"search space {p.key}: {v!r} is not valid ({exc})") from None


def suggest(trial, p: Param):
    if p.choices is not None:
        texts = [_flow(c) for c in p.choices]
        return yaml.safe_load(trial.suggest_categorical(p.key, texts))
    if p.is_int:
        return trial.suggest_int(p.key, p.low, p.high, step=p.step or 1, log=p.log)
    return trial.suggest_float(p.key, float(p.low), float(p.high), step=p.step, log=p.log)


def param_value(p: Param, raw):
    """A stored trial value back as the config value (choices are stored as YAML text)."""
    return yaml.safe_load(raw) if p.choices is not None and isinstance(raw, str) else raw


def validation_run(cfg: Config, ds, progress=None) -> dict:
    """Train `cfg` on `ds` with selection on the validation holdout; no refit, no test.
    -> {"valid": best validation metrics, "best_epoch", "epochs_run", "seconds"}."""
    import torch

    from jnskr import pipeline
    from jnskr.saved import resolve_device
    from jnskr.sizing import Sizes, check_memory
    from jnskr.threads import scoped_threads

    with scoped_threads(cfg.threads, ds.train.nnz, ds.n_users + ds.n_items):
        torch.manual_seed(cfg.seed)
        device = resolve_device(cfg.device)
        prep = pipeline.prepare(cfg, ds)
        kg = prep.item_kg  # the size estimate `jnskr train` runs, before the model is built
        check_memory(cfg, Sizes(ds.n_users, ds.n_items, kg.n_tails if kg else 0, kg.n_relations if kg else 0,
                                kg.n_facts if kg else 0), device)
        model = pipeline.build(cfg, prep, device)
        t0 = time.perf_counter()
        trainer = pipeline.train(cfg, model, prep, pipeline.make_strategy(device), None, False, progress)
    if trainer is None:
        raise JnskrError(f"model {cfg.model} has nothing to train: nothing to tune")
    return {"valid": trainer.state.best_valid, "best_epoch": trainer.state.best_epoch,
            "epochs_run": trainer.state.epoch, "seconds": round(time.perf_counter() - t0, 2)}


class _Pruning:
    """Reports each validation figure to the trial; stops a trial the pruner gives up on."""

    def __init__(self, trial, metric: str, optuna):
        self.trial, self.metric, self.optuna = trial, metric, optuna

    def start(self, *a) -> None: ...
    def batch(self, *a) -> None: ...
    def close(self) -> None: ...

    def epoch_end(self, record: dict) -> None:
        valid = record.get("valid")
        if valid and self.metric in valid:
            self.trial.report(float(valid[self.metric]), int(record["epoch"]))
            if self.trial.should_prune():
                raise self.optuna.TrialPruned()


def run_trials(study, space: SearchSpace, base: dict, ds, n_trials: int, timeout: float | None = None,
               on_trial=None) -> None:
    """Run trials until the study holds `n_trials` finished ones (or `timeout` seconds pass),
    counting the trials other processes run on the same study.  A trial that diverges, or
    whose config would not fit in memory, is a failed trial (one warning line); a Ctrl-C inside
    a trial marks it interrupted -- not finished -- and says what the study keeps."""
    where = getattr(study, "jnskr_path", "study")
    t0 = time.monotonic()
    with quiet_optuna() as optuna, db_errors(where):
        while len(finished(study)) + running_elsewhere(study) < n_trials:
            if timeout is not None and time.monotonic() - t0 >= timeout:
                break
            trial = study.ask()
            trial.set_user_attr(OWNER, owner())
            state, value = _trial(trial, study, space, base, ds, optuna)
            frozen = study.tell(trial, value, state=state)
            if on_trial is not None:
                on_trial(study, frozen)


def _trial(trial, study, space: SearchSpace, base: dict, ds, optuna):
    """Run one trial -> (its state, its value or None)."""
    from jnskr.training.trainer import TrainingDiverged

    TrialState = optuna.trial.TrialState  # noqa: N806
    metric = trial_config(base, {}).train.select_metric
    try:
        values = {p.key: suggest(trial, p) for p in space.params}
        res = validation_run(trial_config(base, values), ds, progress=_Pruning(trial, metric, optuna))
    except optuna.TrialPruned:
        return TrialState.PRUNED, None
    except (TrainingDiverged, ConfigError) as exc:  # diverged, or too big for memory: a failed trial
        return _failed(trial, " ".join(str(exc).split()), TrialState)
    except BaseException as exc:  # Ctrl-C, SIGTERM, a bug: the trial is not finished
        trial.set_user_attr(INTERRUPTED, True)
        study.tell(trial, state=TrialState.FAIL)
        exc.kept = kept_message(study, trial.number)
        raise
    for k in ("best_epoch", "epochs_run", "seconds"):
        trial.set_user_attr(k, res[k])
    trial.set_user_attr("valid", res["valid"])
    value = float(res["valid"][metric])
    if not math.isfinite(value):
        return _failed(trial, f"validation {metric} is {value}", TrialState)
    return TrialState.COMPLETE, value


def _failed(trial, why: str, TrialState):  # noqa: N803
    trial.set_user_attr("failure", why)
    log.warning("trial %d failed: %s", trial.number, why)
    return TrialState.FAIL, None


def rows(study, space: SearchSpace) -> list[dict]:
    """Finished trials, best first: number, state, value, best epoch, seconds, params."""
    out = []
    for t in finished(study):
        out.append({"trial": t.number, "state": t.state.name.lower(), "value": t.value,
                    "best_epoch": t.user_attrs.get("best_epoch"), "seconds": t.user_attrs.get("seconds"),
                    "params": {p.key: param_value(p, t.params.get(p.key)) for p in space.params}})
    out.sort(key=lambda r: (r["value"] is None, -(r["value"] or 0.0), r["trial"]))
    return out


def best_preset(base: dict, space: SearchSpace, trial, metric: str, dataset: str, study_path: str | Path,
                n_finished: int, out: str | Path = "best.yaml") -> str:
    """The best trial's configuration as a commented preset file."""
    import copy

    from jnskr.presets import commented_yaml, key_comments

    values = {p.key: param_value(p, trial.params[p.key]) for p in space.params}
    d = copy.deepcopy(base)
    for k, v in values.items():
        set_dotted(d, k, v)
    header = [
        f"Tuned by `jnskr tune` on {dataset}: {n_finished} trials, study {study_path}.",
        f"Selected on VALIDATION {metric} = {trial.value:.4f} (trial {trial.number}, best epoch "
        f"{trial.user_attrs.get('best_epoch')}); the test split was never evaluated.",
        f"Train it: jnskr train --config {out}   (keys marked `tuned` were searched)",
    ]
    notes = {p.key: f"(tuned: {p.describe()})" for p in space.params}
    return commented_yaml(d, header, notes, key_comments())


def signature(space: SearchSpace, base: dict, dataset_fingerprint: str) -> dict:
    return {"search space": json.dumps([p.__dict__ for p in space.params], sort_keys=True, default=str),
            "base config": json.dumps(base, sort_keys=True, default=str),
            "dataset": dataset_fingerprint}
