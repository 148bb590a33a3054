"""Training goldens (tests/golden/): per-epoch losses and final metrics of every model must not move.

Each CPU capability (AVX2, AVX-512) has its own numbers where float32 rounding differs
(`make_golden.load`).  Regenerate only for a change that moves numbers on purpose: `python tests/golden/make_golden.py --write`.
"""

import json
import sys
from pathlib import Path

import pytest
import torch

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
sys.path.insert(0, str(GOLDEN))

import make_golden  # noqa: E402
from compare import compare_runs  # noqa: E402


def _check(which: str, name: str) -> None:
    want = make_golden.load(which)
    threads = torch.get_num_threads()
    try:
        got = make_golden.run_one(want[name]["config"], _dataset(which))
    finally:
        torch.set_num_threads(threads)
    problems = compare_runs({name: want[name]}, {name: got})
    assert not problems, "\n".join(problems[:20])


_CACHE: dict = {}


def _dataset(which: str):
    if which not in _CACHE:
        _CACHE[which] = make_golden.dataset(which)
    return _CACHE[which]


@pytest.mark.parametrize("name", sorted(json.loads((GOLDEN / "tiny.json").read_text())))
def test_tiny_golden(name):
    _check("tiny", name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(json.loads((GOLDEN / "kgcn-music.json").read_text())))
def test_kgcn_music_golden(name):
    from conftest import shared_dataset

    shared_dataset("kgcn-music")
    _check("kgcn-music", name)


def test_compare_detects_a_moved_number():
    want = json.loads((GOLDEN / "tiny.json").read_text())
    got = json.loads(json.dumps(want))
    got["jnskr"]["epochs"][2]["loss"] *= 1 + 5e-6
    assert compare_runs(want, got) == [f"jnskr.epochs[2].loss: {want['jnskr']['epochs'][2]['loss']!r} != "
                                       f"{got['jnskr']['epochs'][2]['loss']!r}"]


def test_a_capability_overlay_replaces_only_its_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(make_golden, "HERE", tmp_path)
    (tmp_path / "x.json").write_text(json.dumps({"a": {"v": 1.0}, "b": {"v": 2.0}}))
    (tmp_path / "x.avx512.json").write_text(json.dumps({"b": {"v": 2.5}}))
    assert make_golden.load("x", "avx512") == {"a": {"v": 1.0}, "b": {"v": 2.5}}
    assert make_golden.load("x", "avx2") == {"a": {"v": 1.0}, "b": {"v": 2.0}}
    assert make_golden.load("x", "default") == {"a": {"v": 1.0}, "b": {"v": 2.0}}
