"""Training goldens (tests/golden/): per-epoch losses and final metrics of every model must not move.

Regenerate only for a change that moves numbers on purpose: `python tests/golden/make_golden.py --write`.
"""

import json
import sys
from pathlib import Path

import pytest
import torch

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))

import make_golden  # noqa: E402
from compare import compare_runs  # noqa: E402


def _check(which: str, name: str) -> None:
    want = json.loads(make_golden.path(which).read_text())
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
