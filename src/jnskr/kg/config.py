"""Typed, strict configuration of `jnskr kg` (pydantic; unknown keys and out-of-range values are errors).

A run's config is a YAML preset from ``jnskr/kg/presets/`` (``default``, or the one named like
the dataset), then its ``per_model.<model>`` section for the chosen model, then ``--set
key=value`` overrides (dotted keys, values parsed as YAML).
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from jnskr import yamlsafe
from jnskr.config import dotted_keys, origin_of, parse_overrides
from jnskr.data.config import Strict
from jnskr.errors import ConfigError
from jnskr.kg.models import MODELS, get_model

__all__ = ["KGConfig", "preset_names", "preset_dict", "preset_for", "build_config", "parse_overrides"]

PRESETS_PACKAGE = "jnskr.kg.presets"
Side = Literal["uniform", "degree"]


class LossConfig(Strict):
    c_pos: float = Field(1.0, gt=0.0)  # weight of an observed triple
    neg_total: float = Field(1.0, ge=0.0)  # Σ_{h,r,t} c⁻_hrt / |T⁺|: total negative weight per positive
    neg_head: Side = "uniform"  # head factor a_h of c⁻: uniform | degree (∝ deg^β, mean 1)
    neg_relation: Side = "uniform"  # relation factor b_r: uniform | degree (∝ frequency^β)
    neg_tail: Side = "uniform"  # tail factor g_t
    neg_beta: float = Field(0.5, ge=0.0)  # exponent β of the degree weights


class RegConfig(Strict):
    norm: Literal["l2", "n3"] = "n3"  # l2: ½‖x‖²; n3: Σ|x_k|³ (modulus for ComplEx)
    weight: float = Field(0.0, ge=0.0)  # λ
    weighting: Literal["frequency", "uniform"] = "frequency"  # per positive's factors | whole tables


class TrainConfig(Strict):
    solver: Literal["adagrad", "adam", "als"] = "adagrad"
    lr: float = Field(0.1, gt=0.0)  # first-order learning rate (ALS: for the non-exact tables)
    initial_accumulator: float = Field(0.0, ge=0.0)  # Adagrad
    batch_size: int = Field(4096, ge=1)  # positive triples per step (reciprocals included)
    epochs: int = Field(100, ge=1)  # maximum epochs (ALS: sweeps)
    eval_every: int = Field(5, ge=1)  # epochs between validation evaluations
    patience: int = Field(4, ge=1)  # evaluations without improvement before stopping
    min_delta: float = Field(0.0, ge=0.0)  # an improvement must beat the best MRR by more than this
    time_limit: float | None = Field(None, gt=0.0)  # seconds of training; stop after the epoch that passes it
    threads: int | None = Field(None, ge=1)  # torch threads (null: torch's default)


class EvalConfig(Strict):
    memory_mb: float = Field(512.0, gt=0.0)  # cap on the score matrix of one chunk of queries
    select_rule: Literal["kept", "dropped"] = "kept"  # unseen-entity rule of the validation MRR used for selection


class KGConfig(Strict):
    model: Literal["distmult", "complex", "cp"] = "complex"
    dim: int = Field(100, ge=1)  # rank d (ComplEx: d complex numbers = 2d reals per row)
    init_std: float = Field(1e-3, ge=0.0)  # std of the normal initialisation
    reciprocal: bool = True  # add (t, r⁻¹, h) for every training triple; heads are ranked by r⁻¹
    seed: int = Field(0, ge=0)
    dtype: Literal["float32", "float64"] = "float32"
    loss: LossConfig = LossConfig()
    reg: RegConfig = RegConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()

    @model_validator(mode="after")
    def _check(self) -> "KGConfig":
        if self.train.solver == "als" and self.reg.norm != "l2" and self.reg.weight > 0:
            raise ValueError("train.solver als needs reg.norm l2 (F must be quadratic in the exact blocks)")
        return self


def _load_yaml(text: str, where: str) -> dict:
    """A config mapping read by `jnskr.yamlsafe` (duplicate keys, depth, size: one line naming
    `where` and the line)."""
    data = yamlsafe.loads(text, where, ConfigError) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a config must be a mapping of keys to values")
    return data


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(PRESETS_PACKAGE).iterdir() if p.name.endswith(".yaml"))


def preset_dict(name: str) -> dict:
    if name not in preset_names():
        raise ConfigError(f"unknown KG preset {name!r} (known: {', '.join(preset_names())})")
    path = resources.files(PRESETS_PACKAGE) / f"{name}.yaml"
    return _load_yaml(yamlsafe.decode(path.read_bytes(), f"jnskr/kg/presets/{name}.yaml", ConfigError),
                      f"jnskr/kg/presets/{name}.yaml")


def preset_for(dataset_name: str | None) -> str:
    """The preset named like the dataset (case-insensitive; ``kinships`` → ``kinship``), else ``default``."""
    if not dataset_name:
        return "default"
    key = dataset_name.strip().lower()
    key = {"kinships": "kinship"}.get(key, key)
    return key if key in preset_names() else "default"


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {key}: {p!r} is not a section")
        cur = nxt
    cur[parts[-1]] = value


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _validate(d: dict, where: str = "KG config", origins: dict[str, str] | None = None) -> KGConfig:
    """The validated config; a bad value is one line naming where it came from (the preset file, or
    the ``--set`` that gave it), the key and the problem."""
    try:
        return KGConfig.model_validate(d)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        raise ConfigError(f"{origin_of(loc, where, origins)}: {loc or 'config'}: {msg}") from None


def build_config(preset: str | None = None, model: str | None = None, overrides: list[str] | None = None,
                 extra: dict | None = None) -> KGConfig:
    """Preset (default ``default``) <- its ``per_model`` section <- `extra` <- ``--set`` overrides."""
    d = preset_dict(preset or "default")
    per_model = d.pop("per_model", None) or {}
    if not isinstance(per_model, dict) or any(k not in MODELS for k in per_model):
        raise ConfigError(f"preset {preset}: per_model must map model names ({', '.join(MODELS)}) to sections")
    sets = parse_overrides(overrides)
    if model is None:
        model = next((v for k, v in reversed(sets) if k == "model"), None) or (extra or {}).get("model") or d.get("model")
    if model is not None:
        get_model(model)  # an unknown name: one line listing the known ones
        d["model"] = model
        d = _merge(d, per_model.get(model) or {})
    d = _merge(d, extra or {})
    origins = {k: "the given config" for k in dotted_keys(extra or {})}
    for (k, v), item in zip(sets, overrides or []):
        _set_dotted(d, k, v)
        origins[k] = f"--set {item}"
    if model is not None:
        d["model"] = model
    return _validate(d, f"jnskr/kg/presets/{preset or 'default'}.yaml", origins)

