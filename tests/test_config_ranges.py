"""Every numeric key of every config section (the model sections included) is range-checked:
NaN and infinities are refused everywhere, every key refuses a hugely negative value (except a
threshold, where any finite number means something), integers must fit int64, and the error
names the key and where the value came from (the file, the preset or the `--set` item)."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel

from jnskr.config import Config, build_config
from jnskr.errors import ConfigError

UNBOUNDED_BELOW = {"data.weight_threshold"}  # ratings may be negative; any finite threshold is valid


def _kinds(ann) -> set:
    """The scalar types an annotation admits (through Optional, unions, lists and tuples)."""
    if ann in (int, float, bool, str):
        return {ann}
    out = set()
    for a in typing.get_args(ann):
        out |= _kinds(a)
    return out


def numeric_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[tuple[str, object, set]]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += numeric_keys(ann, f"{prefix}{name}.")
            continue
        kinds = _kinds(ann)
        if kinds & {int, float}:
            out.append((prefix + name, ann, kinds))
    return out


KEYS = numeric_keys()


def _container(ann) -> str | None:
    for a in [ann, *typing.get_args(ann)]:
        o = typing.get_origin(a) or a
        if o in (list, tuple):
            return "tuple" if o is tuple else "list"
    return None


def _as_value(ann, x: str) -> str:
    kind = _container(ann)
    if kind == "tuple":
        return f"[{x}, {x}]"
    if kind == "list":
        return f"[{x}]"
    return x


def test_every_section_is_covered():
    sections = {k.split(".")[0] for k, _, _ in KEYS if "." in k}
    assert {"train", "eval", "data", "jnskr", "enmf", "bpr", "lightgcn", "sampled"} <= sections
    assert {"seed", "threads"} <= {k for k, _, _ in KEYS}


@pytest.mark.parametrize("key,ann,kinds", KEYS, ids=[k for k, _, _ in KEYS])
@pytest.mark.parametrize("bad", [".nan", ".inf", "-.inf"])
def test_non_finite_values_are_refused(key, ann, kinds, bad):
    item = f"{key}={_as_value(ann, bad)}"
    with pytest.raises(ConfigError) as e:
        build_config("default", overrides=[item])
    msg = str(e.value)
    assert msg.startswith(f"--set {item}: {key}") and "\n" not in msg, msg


@pytest.mark.parametrize("key,ann,kinds", [k for k in KEYS if k[0] not in UNBOUNDED_BELOW],
                         ids=[k for k, _, _ in KEYS if k not in UNBOUNDED_BELOW])
def test_every_numeric_key_has_a_lower_bound(key, ann, kinds):
    x = "-1000000000000" if int in kinds else "-1.0e+12"
    item = f"{key}={_as_value(ann, x)}"
    with pytest.raises(ConfigError) as e:
        build_config("default", overrides=[item])
    assert str(e.value).startswith(f"--set {item}: {key}"), str(e.value)


@pytest.mark.parametrize("key,ann,kinds", [k for k in KEYS if int in k[2] and float not in k[2]],
                         ids=[k for k, _, kinds in KEYS if int in kinds and float not in kinds])
def test_integers_beyond_int64_are_refused(key, ann, kinds):
    item = f"{key}={_as_value(ann, str(2**63))}"
    with pytest.raises(ConfigError):
        build_config("default", overrides=[item])


@pytest.mark.parametrize("item,expected", [
    ("train.eval_every=0", "train.eval_every: Input should be greater than or equal to 1"),
    ("train.initial_accumulator=-1", "train.initial_accumulator: Input should be greater than 0"),
    ("train.initial_accumulator=0", "train.initial_accumulator: Input should be greater than 0"),
    ("jnskr.attention_dim=-3", "jnskr.attention_dim: Input should be greater than or equal to 1"),
    ("jnskr.init_std=-1", "jnskr.init_std: Input should be greater than or equal to 0.000001"),
    ("jnskr.init_std=1e-308", "jnskr.init_std: Input should be greater than or equal to 0.000001"),
    ("jnskr.kappa=0", "jnskr.kappa: Input should be greater than 0"),
    ("seed=1e23", "seed: Input should be a valid integer"),
    ("seed=100000000000000000000000", "seed: 100000000000000000000000 is out of range"),
    ("seed=-1", "seed: Input should be greater than or equal to 0"),
    ("data.split_seed=-1", "data.split_seed: must lie in 0..4294967295, not -1"),
    ("data.test_seed=4294967296", "data.test_seed: must lie in 0..4294967295"),
    ("jnskr.beta=.nan", "jnskr.beta: must be a finite number, not nan"),
    ("jnskr.beta=11", "jnskr.beta: Input should be less than or equal to 10"),
    ("train.epochs=2000000", "train.epochs: Input should be less than or equal to 1000000"),
    ("sampled.negatives=1000", "sampled.negatives: Input should be less than or equal to 100"),
])
def test_the_reported_values_are_one_line_errors_naming_the_set_item(item, expected):
    with pytest.raises(ConfigError) as e:
        build_config("default", overrides=[item])
    assert str(e.value).startswith(f"--set {item}: ") and expected in str(e.value), str(e.value)


def test_errors_name_the_file_when_the_value_is_in_the_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  eval_every: 0\n")
    with pytest.raises(ConfigError, match=rf"^{f}: train.eval_every: Input should be greater"):
        build_config(file=f)
    with pytest.raises(ConfigError, match=r"^--set train.eval_every=-2: train.eval_every"):
        build_config(file=f, overrides=["train.eval_every=-2"])


@pytest.mark.parametrize("text,expected", [
    ("train:\n  epochs: 3\n  epochs: 4\n", ":3: duplicate key 'train.epochs' (first on line 2)"),
    ("jnskr: {c0: 1, c0: 2}\n", ":1: duplicate key 'jnskr.c0'"),
    ("a: " + "[" * 3000 + "]" * 3000 + "\n", "nested"),
    ("x: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [" + ", ".join([f"*{p}"] * 10) + "]\n" for p, c in zip("abcdefg", "bcdefgh")), "aliases"),
])
def test_config_files_that_are_not_configs(tmp_path, text, expected):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        build_config(file=f)
    assert expected in str(e.value) and "\n" not in str(e.value), str(e.value)


@pytest.mark.parametrize("raw,expected", [
    ("model: jnskr\n".encode("utf-16"), "not UTF-8 text but UTF-16"),
    (b"model: jnskr\n\x00\x01", ":2: NUL byte"),
    (b"model: \xff\xfejnskr\n", ":1: not UTF-8 text (binary file?)"),
    (b"\xef\xbb\xbfmodel: enmf\n", None),  # a UTF-8 byte-order mark is fine
    (b"#" * 2_000_000, "too large"),
])
def test_config_file_bytes(tmp_path, raw, expected):
    f = tmp_path / "c.yaml"
    f.write_bytes(raw)
    if expected is None:
        assert build_config(file=f).model == "enmf"
        return
    with pytest.raises(ConfigError, match=None) as e:
        build_config(file=f)
    assert expected in str(e.value), str(e.value)


def test_config_file_that_is_not_a_regular_file(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        build_config(file=tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        build_config(file=tmp_path / "missing.yaml")
