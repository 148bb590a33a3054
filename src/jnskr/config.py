"""Typed, strict configuration (pydantic).  Unknown keys are errors.

A run's config is layered: a YAML preset from `jnskr/presets/` (`default` unless one is named),
then a user file over it (`--config FILE`: only the keys it holds change; a ``preset:`` key in
the file names the preset under it), then command-line flags, then `--set key=value` overrides
(dotted keys, values parsed with `yaml.safe_load`).  `Config.layers()` lists the layers used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, create_model, field_validator, model_validator

from jnskr.data.config import DataConfig, Strict as _Strict
from jnskr import yamlsafe
from jnskr.errors import ConfigError
from jnskr.models import MODELS
from jnskr.models import get as get_model
from jnskr.models import sections as model_sections
from jnskr.models.jnskr import JNSKRConfig, SampledConfig  # noqa: F401  (re-exported)
from jnskr.models.mf import BPRConfig, ENMFConfig  # noqa: F401


SELECTABLE = ("recall", "ndcg", "ndcg_kgat", "precision", "hit")
SEED_MAX = 2**32 - 1  # numpy's seeds; torch's too
#: range checks of keys whose sections live elsewhere (`jnskr.data.config`): key -> (min, max)
EXTRA_RANGES = {"data.split_seed": (0, SEED_MAX), "data.test_seed": (0, SEED_MAX)}
INT_LIMIT = 2**63  # every integer must fit the int64 it becomes in numpy and torch


class TrainConfig(_Strict):
    protocol: Literal["standard", "paper"] = "standard"
    solver: Literal["adagrad", "als"] | None = None  # null: als where the model has exact blocks (standard), else adagrad
    refit: bool | None = None  # null: true under standard (retrain on all of train for the selected epochs)
    refit_parallel: bool | None = None  # null: on CPU with one torch thread and a free core, the refit runs beside selection
    block_solver: Literal["auto", "cholesky", "cg"] = "auto"  # als row blocks: exact, or warm-started CG (auto: cg above d = 32)
    cg_steps: int = Field(6, ge=1, le=1000)  # conjugate-gradient steps per block and sweep (block_solver cg)
    batch_size: int = Field(256, ge=1)
    drop_last: bool | None = None  # default: False (standard), True (paper)
    optimizer: Literal["adagrad", "adam"] = "adagrad"
    lr: float = Field(0.05, gt=0.0)
    initial_accumulator: float = Field(1e-8, gt=0.0)  # Adagrad without epsilon: 0 would divide 0 by 0
    epochs: int = Field(101, ge=1, le=1_000_000)
    eval_every: int | None = Field(None, ge=1)  # default: 2 (als), 5 (adagrad), 10 (paper)
    patience: int | None = Field(None, ge=1)  # evaluations without improvement; default: 3 (als), 5 (adagrad)
    select_metric: str | None = None  # default: recall@20 (standard), recall@10 (paper)
    checkpoint_every: int = Field(0, ge=0)  # 0: only at evaluations


class EvalConfig(_Strict):
    ks: list[int] = [10, 20, 40]
    k_max: int = Field(100, ge=1)
    batch_size: int = Field(1024, ge=1)


class _ConfigBase(_Strict):
    model: str = "jnskr"
    seed: int = Field(2019, ge=0, le=SEED_MAX)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1, le=1024)  # torch threads (null: chosen from the data size)
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    _layers: list[str] = PrivateAttr(default_factory=list)  # where the values came from (`layers`)
    _resolved: dict = PrivateAttr(default_factory=dict)  # {train key: value} that `resolved_train` filled in

    def layers(self) -> list[str]:
        """The layers this config was built from, first to last (``["preset default", "my.yaml",
        "--set train.epochs=5"]``); empty for a config validated from a plain dict."""
        return list(self._layers)

    def __eq__(self, other) -> bool:  # the same values are the same config, whatever layers gave them
        return type(other) is type(self) and self.__dict__ == other.__dict__

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v not in MODELS:
            raise ValueError(f"unknown model {v!r} (known: {', '.join(sorted(MODELS))})")
        return v

    @model_validator(mode="after")
    def _resolve_and_check(self) -> "Config":
        """Fill the protocol-dependent defaults (`resolved_train`) into `train`, so the config a run
        saves says what it ran, then check the keys against each other."""
        filled = resolved_train(self)
        object.__setattr__(self, "train", self.train.model_copy(update=filled))
        self._resolved = dict(filled)
        metric = self.train.select_metric
        name, _, k = metric.partition("@")
        if name not in SELECTABLE or not k.isdigit() or not 1 <= int(k) <= self.eval.k_max:
            raise ValueError(f"train.select_metric {metric!r}: expected one of {', '.join(SELECTABLE)} "
                             f"followed by @K with 1 <= K <= eval.k_max ({self.eval.k_max})")
        if any(k < 1 or k > self.eval.k_max for k in self.eval.ks):
            raise ValueError(f"eval.ks must lie in 1..eval.k_max ({self.eval.k_max})")
        if self.train.solver == "als" and (why := self.model_class().sweeps_supported(self)) is not None:
            raise ValueError(f"train.solver: als -- {why}")
        if self.train.refit and self.train.protocol == "paper":
            raise ValueError("train.refit: the paper protocol selects on the test set; there is nothing to refit")
        return self

    def model_class(self):
        """The registered class of `model`."""
        return get_model(self.model)

    def learning_rate(self) -> float:
        return self.model_class().learning_rate(self)

    def select_k(self) -> int:
        return int(self.train.select_metric.partition("@")[2])


def refresh_defaults(cfg: Config) -> Config:
    """`cfg` with its resolved `train` defaults worked out again from its current values: a key set
    after validation (``cfg.train.solver = "adagrad"`` in a notebook) moves the defaults that depend
    on it, as if it had been given.  Keys assigned since, or given, are kept.  (`jnskr.pipeline.run`
    calls it.)"""
    stale = {k: None for k, v in cfg._resolved.items() if getattr(cfg.train, k) == v}
    if not stale:
        return cfg
    out = cfg.model_copy(update={"train": cfg.train.model_copy(update=stale)})
    filled = resolved_train(out)
    out = out.model_copy(update={"train": out.train.model_copy(update=filled)})
    out._resolved = {**{k: v for k, v in cfg._resolved.items() if k not in stale}, **filled}
    return out


def resolved_train(cfg) -> dict:
    """The `train` keys left null, resolved from the protocol and the model (the values a run uses):

    * solver: als where the model has exact blocks under the standard protocol, else adagrad;
    * refit: true under the standard protocol;
    * eval_every: 10 under the paper protocol, else 2 (als) or 5 (adagrad);
    * patience: 3 (als; an exact sweep moves much further than an epoch of first-order steps) or 5;
    * drop_last: true under the paper protocol;
    * select_metric: recall@10 under the paper protocol, else recall@20."""
    t, paper = cfg.train, cfg.train.protocol == "paper"
    out: dict = {}
    solver = t.solver
    if solver is None:
        ok = cfg.model_class().sweeps_supported(cfg) is None
        solver = out["solver"] = "als" if not paper and ok else "adagrad"
    if t.refit is None:
        out["refit"] = not paper
    if t.eval_every is None:
        out["eval_every"] = 10 if paper else 2 if solver == "als" else 5
    if t.patience is None:
        out["patience"] = 3 if solver == "als" else 5
    if t.drop_last is None:
        out["drop_last"] = paper
    if not t.select_metric:
        out["select_metric"] = "recall@10" if paper else "recall@20"
    return out


_CONFIG_CLASSES: dict[tuple, type] = {}


def config_class() -> type:
    """The run configuration class for the models registered *now*: the common sections plus one
    section per registered model (`jnskr`, `enmf`, `bpr`, `sampled`, `lightgcn`, ...), each validated
    by its model's own class.  Built again when a model registers after this module was imported."""
    secs = model_sections()
    key = tuple(sorted((name, id(cls)) for name, cls in secs.items()))
    if key not in _CONFIG_CLASSES:
        _CONFIG_CLASSES[key] = create_model("Config", __base__=_ConfigBase, __module__=__name__,
                                            **{name: (cls, cls()) for name, cls in secs.items()})
    return _CONFIG_CLASSES[key]


#: The run configuration of the built-in models (for type hints; `validate_config` always uses
#: `config_class()`, so models registered later are known too).
Config = config_class()


PRESETS_PACKAGE = "jnskr.presets"


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(PRESETS_PACKAGE).iterdir() if p.name.endswith(".yaml"))


def _load_yaml(text: str, where: str) -> dict:
    data = yamlsafe.loads(text, where, ConfigError) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a config must be a mapping of keys to values")
    return data


def preset_dict(name: str) -> dict:
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(preset_names())})")
    text = (resources.files(PRESETS_PACKAGE) / f"{name}.yaml").read_text()
    return _load_yaml(text, f"preset {name}")


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {key}: {p!r} is not a section")
        cur = nxt
    cur[parts[-1]] = value


def parse_overrides(items: list[str] | None) -> list[tuple[str, Any]]:
    out = []
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        k, v = item.split("=", 1)
        if not k.strip() or any(not p for p in k.strip().split(".")):
            raise ConfigError(f"--set {item!r}: expected key=value with a dotted key like train.epochs")
        val = yamlsafe.loads(v, f"--set {item}", ConfigError) if v != "" else None
        out.append((k.strip(), val))
    return out


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def build_config(
    preset: str | None = None,
    file: str | Path | None = None,
    overrides: list[str] | dict | None = None,
    extra: dict | None = None,
) -> Config:
    """Preset <- config file <- `extra` dict <- `overrides`; validated.

    The preset is `preset`, else the file's ``preset:`` key, else ``default``; the file (a YAML
    mapping) changes only the keys it holds.  `overrides`: ``"key=value"`` strings
    (``["train.epochs=50"]``, as ``--set``), or a dict of dotted keys to values
    (``{"train.epochs": 50, "model": "enmf"}``).  An error names where the bad value came from:
    the file, the preset or the `--set` item; `Config.layers()` lists the layers."""
    lay = layered_dict(preset, file, overrides, extra)
    cfg = validate_config(lay.values, f"preset {lay.preset}", lay.origins)
    cfg._layers = lay.layers
    return cfg


@dataclass
class Layered:
    """The raw (unvalidated) config `layered_dict` composes: `values`, the preset it started
    from, where each dotted key came from (`origins`) and the layers in order."""

    values: dict
    preset: str
    origins: dict
    layers: list


def layered_dict(
    preset: str | None = None,
    file: str | Path | None = None,
    overrides: list[str] | dict | None = None,
    extra: dict | None = None,
) -> Layered:
    """The layering of `build_config` without the validation (`jnskr tune` applies each trial's
    values to it, then validates)."""
    origins: dict[str, str] = {}
    own: dict = {}
    if file is not None:
        p = Path(file)
        own = _load_yaml(yamlsafe.read_file(p, ConfigError), str(p))
        named = own.pop("preset", None)
        if named is not None and not isinstance(named, str):
            raise ConfigError(f"{p}: preset: expected a preset name like 'default', not {named!r}")
        preset = preset or named
        origins.update({k: str(p) for k in dotted_keys(own)})
    preset = preset or "default"
    base = preset_dict(preset)
    layers = [f"preset {preset}"]
    if file is not None:
        base = _deep_merge(base, own)
        layers.append(str(file))
    if extra:
        base = _deep_merge(base, extra)
        origins.update({k: "command line" for k in dotted_keys(extra)})
        layers.append("command line (" + ", ".join(dotted_keys(extra)) + ")")
    if isinstance(overrides, dict):
        pairs = [(f"overrides {k}={v!r}", (k, v)) for k, v in overrides.items()]
        if any(not isinstance(k, str) or not k.strip() or "" in k.split(".") for k in overrides):
            raise ConfigError(f"overrides {list(overrides)!r}: expected dotted keys like 'train.epochs'")
    else:
        pairs = [(f"--set {item}", kv) for item, kv in zip(overrides or [], parse_overrides(overrides))]
    for origin, (k, v) in pairs:
        _set_dotted(base, k, v)
        origins[k] = origin
        layers.append(origin)
    return Layered(base, preset, origins, layers)


def dotted_keys(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        out += dotted_keys(v, key + ".") if isinstance(v, dict) and v else [key]
    return out


def origin_of(loc: str, where: str, origins: dict[str, str] | None) -> str:
    """Where the value at dotted `loc` came from (the longest overridden prefix wins)."""
    parts = loc.split(".") if loc else []
    for n in range(len(parts), 0, -1):
        hit = (origins or {}).get(".".join(parts[:n]))
        if hit is not None:
            return hit
    return where


def _numbers(obj, path: str):
    """(dotted key, value) of every number in a config, raw or validated (lists as key[i])."""
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _numbers(getattr(obj, name), f"{path}.{name}" if path else name)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def _check_numbers(cfg, where: str, origins: dict[str, str] | None) -> None:
    """NaN and infinity nowhere, every integer within int64, and the ranges of `EXTRA_RANGES`."""
    for key, v in _numbers(cfg, ""):
        at = origin_of(key.split("[")[0], where, origins)
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{at}: {key}: must be a finite number, not {v}")
        if isinstance(v, int) and not -INT_LIMIT < v < INT_LIMIT:
            raise ConfigError(f"{at}: {key}: {v} is out of range (integers must lie within +-2^63)")
        lo, hi = EXTRA_RANGES.get(key, (None, None))
        if lo is not None and not lo <= v <= hi:
            raise ConfigError(f"{at}: {key}: must lie in {lo}..{hi}, not {v}")


def validate_config(data: dict, where: str = "config", origins: dict[str, str] | None = None) -> Config:
    """The validated config of `data`, or a one-line `ConfigError` naming the key, the problem
    and where the value came from (`where`, or the `origins` of overridden keys)."""
    try:
        _check_numbers(data, where, origins)  # NaN first: a range check would word it oddly
        cfg = config_class().model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        at = origin_of(loc, where, origins)
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"{at}: unknown key {loc!r}") from None
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:  # a check across keys: its message starts with the key it is about
            at = origin_of(msg.split(" ")[0].rstrip(":"), where, origins)
        raise ConfigError(f"{at}: {loc + ': ' if loc else ''}{msg}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply; not a config") from None
    _check_numbers(cfg, where, origins)
    return cfg


def config_to_dict(cfg: Config, as_given: bool = False) -> dict:
    """The config as plain data: with its resolved defaults (what a run saves), or `as_given`, the
    keys `resolved_train` filled back at null (a base to layer other values over: a different model
    or protocol then resolves them anew)."""
    out = cfg.model_dump(mode="json")
    if as_given:
        for key in cfg._resolved:
            out["train"][key] = None
    return out
