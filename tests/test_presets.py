"""Presets: every key documented by a comment, every preset valid, every model section present."""

from importlib import resources

import pytest
import yaml

from jnskr.config import build_config, preset_names

PRESETS = preset_names()


@pytest.mark.parametrize("name", PRESETS)
def test_every_key_has_a_comment(name):
    text = (resources.files("jnskr.presets") / f"{name}.yaml").read_text()
    bare = [line for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#") and ":" in line and "#" not in line]
    assert not bare, f"{name}.yaml: keys without a comment: {bare}"


@pytest.mark.parametrize("name", PRESETS)
def test_preset_validates_and_names_only_known_sections(name):
    cfg = build_config(name)
    data = yaml.safe_load((resources.files("jnskr.presets") / f"{name}.yaml").read_text())
    assert set(data) <= set(type(cfg).model_fields)
