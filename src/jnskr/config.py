"""Typed, strict configuration (pydantic).  Unknown keys are errors.

A run's config is: a YAML preset from `jnskr/presets/` (or a user file), then `--set key=value`
overrides (dotted keys, values parsed with `yaml.safe_load`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, create_model, field_validator, model_validator

from jnskr.data.config import DataConfig, Strict as _Strict
from jnskr.errors import ConfigError
from jnskr.models import MODELS
from jnskr.models import get as get_model
from jnskr.models import sections as model_sections
from jnskr.models.jnskr import JNSKRConfig  # noqa: F401  (re-exported)
from jnskr.models.mf import BPRConfig, ENMFConfig  # noqa: F401
from jnskr.models.sampled import SampledConfig  # noqa: F401


SELECTABLE = ("recall", "ndcg", "ndcg_kgat", "precision", "hit")


class TrainConfig(_Strict):
    protocol: Literal["standard", "paper"] = "standard"
    solver: Literal["adagrad", "als"] | None = None  # null: als where the model has exact blocks (standard), else adagrad
    refit: bool | None = None  # null: true under standard (retrain on all of train for the selected epochs)
    batch_size: int = Field(256, ge=1)
    drop_last: bool | None = None  # default: False (standard), True (paper)
    optimizer: Literal["adagrad", "adam"] = "adagrad"
    lr: float = Field(0.05, gt=0.0)
    initial_accumulator: float = 1e-8
    epochs: int = Field(101, ge=1)
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
    seed: int = 2019
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1, le=1024)  # torch threads (null: chosen from the data size)
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v not in MODELS:
            raise ValueError(f"unknown model {v!r} (known: {', '.join(sorted(MODELS))})")
        return v

    @model_validator(mode="after")
    def _check_select_metric(self) -> "Config":
        metric = self.select_metric()
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

    def solver(self) -> str:
        """The resolved `train.solver`: als where the model has exact blocks (protocol standard)."""
        if self.train.solver is not None:
            return self.train.solver
        ok = self.model_class().sweeps_supported(self) is None
        return "als" if self.train.protocol == "standard" and ok else "adagrad"

    def refit(self) -> bool:
        if self.train.refit is not None:
            return self.train.refit
        return self.train.protocol == "standard"

    def model_class(self):
        """The registered class of `model`."""
        return get_model(self.model)

    def learning_rate(self) -> float:
        return self.model_class().learning_rate(self)

    def select_k(self) -> int:
        return int(self.select_metric().partition("@")[2])

    # resolved defaults that depend on the protocol
    def eval_every(self) -> int:
        if self.train.eval_every is not None:
            return self.train.eval_every
        if self.train.protocol == "paper":
            return 10
        return 2 if self.solver() == "als" else 5

    def patience(self) -> int:
        """Evaluations without improvement before stopping (an exact sweep moves much further than
        an epoch of first-order steps, so fewer are needed under als)."""
        if self.train.patience is not None:
            return self.train.patience
        return 3 if self.solver() == "als" else 5

    def drop_last(self) -> bool:
        if self.train.drop_last is not None:
            return self.train.drop_last
        return self.train.protocol == "paper"

    def select_metric(self) -> str:
        if self.train.select_metric:
            return self.train.select_metric
        return "recall@10" if self.train.protocol == "paper" else "recall@20"


#: The run configuration: the common sections plus one section per registered model
#: (`jnskr`, `enmf`, `bpr`, `sampled`, `lightgcn`, ...), each validated by its model's own class.
Config = create_model(
    "Config",
    __base__=_ConfigBase,
    __module__=__name__,
    **{name: (cls, cls()) for name, cls in model_sections().items()},
)


PRESETS_PACKAGE = "jnskr.presets"


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(PRESETS_PACKAGE).iterdir() if p.name.endswith(".yaml"))


def _load_yaml(text: str, where: str) -> dict:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
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
        try:
            val = yaml.safe_load(v) if v != "" else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: value is not valid YAML") from None
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
    overrides: list[str] | None = None,
    extra: dict | None = None,
) -> Config:
    """Preset (or `default`) <- config file <- `extra` dict <- `--set` overrides; validated."""
    base: dict = {}
    if file is not None:
        p = Path(file)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        base = _load_yaml(p.read_text(), str(p))
    else:
        base = preset_dict(preset or "default")
    if extra:
        base = _deep_merge(base, extra)
    for k, v in parse_overrides(overrides):
        _set_dotted(base, k, v)
    return validate_config(base, str(file) if file else f"preset {preset or 'default'}")


def validate_config(data: dict, where: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"{where}: unknown key {loc!r}") from None
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}: {loc + ': ' if loc else ''}{msg}") from None


def config_to_dict(cfg: Config) -> dict:
    return cfg.model_dump(mode="json")
