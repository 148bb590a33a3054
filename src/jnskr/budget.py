"""Tuning inside a wall-clock budget (`jnskr train --budget 15m`, `Recommender.fit(budget=...)`).

For the user who would otherwise grid-search ALS in a notebook: Optuna searches a space (the shipped
`jnskr.spaces` one for the model: ``jnskr`` for JNSKR, ``ials`` for ENMF) on the VALIDATION holdout
of train only, every trial early-stopped on validation as `jnskr tune`'s are, the first trial warm-
started at the config as given; after a share of the budget (`TUNE_SHARE`) the best setting is
trained again, selected on validation and refit on all of train, as `jnskr train` does.  Every trial
is kept (`Tuning.trials`, and ``tuning.json`` in the run folder).  Ctrl-C while tuning keeps the
best setting so far and goes on to the final fit; a second Ctrl-C stops that as usual.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from jnskr.config import Config, config_to_dict, parse_overrides
from jnskr.errors import ConfigError, JnskrError

log = logging.getLogger("jnskr")

#: the share of the budget the search may take; the rest is for the final fit (selection + refit)
TUNE_SHARE = 0.6
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_budget(text: str | float | int) -> float:
    """Seconds of a budget: a number (seconds) or ``90s``, ``15m``, ``1.5h``."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", str(text))
        if not m:
            raise ConfigError(f"--budget {text!r}: expected a duration such as 90s, 15m or 1.5h")
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"--budget {text!r}: must be a positive duration")
    return seconds


#: the shipped space each model is tuned over when none is named
DEFAULT_SPACES = {"jnskr": "jnskr", "enmf": "ials"}


def default_space(model: str) -> str:
    if model not in DEFAULT_SPACES:
        raise ConfigError(f"--budget: no shipped search space for model {model!r} (shipped: "
                          f"{', '.join(f'{m} -> {s}' for m, s in DEFAULT_SPACES.items())}); name a space file")
    return DEFAULT_SPACES[model]


@dataclass
class Tuning:
    """What the search did: every trial, the chosen one and the time it took."""

    space: str
    budget_seconds: float
    seconds: float = 0.0
    interrupted: bool = False
    trials: list[dict] = field(default_factory=list)
    best: dict | None = None

    def to_dict(self) -> dict:
        return {"space": self.space, "budget_seconds": self.budget_seconds, "seconds": round(self.seconds, 2),
                "interrupted": self.interrupted, "selected_on": "validation (the test split is never read)",
                "best": self.best, "trials": self.trials}


def _record(trial) -> dict:
    import yaml

    params = {k: yaml.safe_load(v) if isinstance(v, str) else v for k, v in trial.params.items()}  # choices: YAML text
    return {"number": trial.number, "state": trial.state.name, "params": params,
            "value": trial.value, "valid": trial.user_attrs.get("valid"),
            "best_epoch": trial.user_attrs.get("best_epoch"), "seconds": trial.user_attrs.get("seconds")}


def search(config: Config, dataset, seconds: float, space: str | None = None, seed: int = 0) -> tuple[Config, Tuning]:
    """Search `space` around `config` on `dataset`'s validation holdout for at most `seconds`.
    -> (the best trial's config, or `config` when no trial finished; the record)."""
    from jnskr import tune as T
    from jnskr.studies import optuna_module, quiet_optuna

    optuna = optuna_module()
    name = space or default_space(config.model)
    sp = T.load_space(name)
    base = config_to_dict(config, as_given=True)
    for s in sp.sets:  # the space's fixed settings, except the model's own section if the user chose another model
        k, v = parse_overrides([s])[0]
        if k == "model":
            continue
        T.set_dotted(base, k, v)
    base["model"] = config.model
    T.check_space(base, sp)
    with quiet_optuna():
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    warm = {}
    for p in sp.params:  # warm start: the config as given, where its value is a point of the space
        section, _, key = p.key.partition(".")
        value = base.get(section, {}).get(key) if isinstance(base.get(section), dict) else None
        if value is not None and (p.choices is None and p.low <= value <= p.high or
                                  p.choices is not None and value in p.choices):
            warm[p.key] = T._flow(value) if p.choices is not None else value
    if warm:
        study.enqueue_trial(warm, skip_if_exists=True)
    record = Tuning(space=name, budget_seconds=seconds)
    t0 = time.monotonic()
    try:
        T.run_trials(study, sp, base, dataset, n_trials=10**9, timeout=seconds,
                     on_trial=lambda st, tr: log.info("tuning: trial %d %s%s", tr.number, tr.state.name.lower(),
                                                      f"  valid {tr.value:.4f}" if tr.value is not None else ""))
    except KeyboardInterrupt:
        record.interrupted = True
        log.warning("tuning interrupted: the best setting so far is kept and trained now (Ctrl-C again to stop)")
    record.seconds = time.monotonic() - t0
    record.trials = [_record(t) for t in study.trials]
    done = [t for t in study.trials if t.state.name == "COMPLETE" and t.value is not None]
    if not done:
        log.warning("tuning: no trial finished within the budget; training the config as given")
        return config, record
    best = max(done, key=lambda t: t.value)
    record.best = _record(best)
    values = {p.key: T.param_value(p, best.params[p.key]) for p in sp.params if p.key in best.params}
    chosen = T.trial_config(base, values)
    chosen._layers = [*config.layers(), f"--budget: trial {best.number} of space {name}"]
    return chosen, record


def fit_within_budget(recommender, dataset, budget, run_dir: str | Path | None = None, progress="auto",
                      space: str | None = None):
    """`Recommender.fit` after a search inside `budget` (module docstring).  -> the recommender,
    trained with the chosen config; `recommender.tuning` holds the search's record."""
    seconds = parse_budget(budget)
    t0 = time.monotonic()
    cfg, record = search(recommender.config, dataset, TUNE_SHARE * seconds, space, seed=recommender.config.seed)
    log.info("tuning: %d trials in %.0f s; best %s", len(record.trials), record.seconds,
             "none" if record.best is None else f"trial {record.best['number']} (valid {record.best['value']:.4f})")
    if cfg.train.protocol != "standard":
        raise JnskrError("--budget tunes on validation: train.protocol must be standard")
    recommender.config = cfg
    recommender.fit(dataset, run_dir=run_dir, progress=progress)
    recommender.tuning = record
    if run_dir is not None:
        out = Path(run_dir) / "tuning.json"
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({**record.to_dict(), "total_seconds": round(time.monotonic() - t0, 2)},
                                  indent=1, default=str) + "\n")
        tmp.replace(out)
    return recommender
