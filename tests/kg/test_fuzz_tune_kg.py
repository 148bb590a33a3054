"""Hypothesis fuzzing of `jnskr tune` search spaces and of KG folders (issue 20: "the
property-based fuzzers cover tune spaces, KG folders").

* A search space either is refused when read (`ConfigError`, one line) or every range and list
  of choices in it is one Optuna samples without complaint: nothing fails mid-search.
* A KG data folder (train/valid/test texts drawn from labels, separators, blank lines, junk)
  either trains (exit 0, a run folder) or is refused (exit 2, one `error:` line, no traceback,
  no run folder).
* A KG run folder with one file replaced by drawn JSON, YAML or bytes either evaluates (exit 0)
  or is refused with exit 2 and one `error:` line.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jnskr.cli.main import run
from jnskr.errors import ConfigError
from conftest import DATA

LEVELS = ("error:", "DEBUG ", "INFO ", "WARNING ", "ERROR ", "CRITICAL ")
FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

NUMBERS = st.one_of(st.integers(-5, 70), st.floats(allow_nan=True, allow_infinity=True, width=32),
                    st.sampled_from([0, 1, 2, 0.5, 1e-9, 2**63, -1]))
ANY = st.one_of(NUMBERS, st.booleans(), st.none(), st.text(max_size=4), st.lists(st.integers(0, 3), max_size=2))
RANGE = st.fixed_dictionaries({"low": NUMBERS, "high": NUMBERS},
                              optional={"log": st.one_of(st.booleans(), ANY), "step": st.one_of(st.none(), NUMBERS, ANY)})
SPEC = st.one_of(RANGE, st.lists(ANY, min_size=0, max_size=3), ANY,
                 st.dictionaries(st.sampled_from(["low", "high", "log", "step", "q"]), ANY, max_size=4))


def _one_line_or_ok(rc: int, err: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and all(ln.startswith(LEVELS) for ln in lines), err
    assert rc in (0, 2), (rc, err)
    assert sum(ln.startswith("error:") for ln in lines) == (1 if rc == 2 else 0), err


@FUZZ
@given(space=st.dictionaries(st.sampled_from(["jnskr.c0", "jnskr.embed_dim", "jnskr.lambda_emb", "a.b"]), SPEC,
                             min_size=0, max_size=3),
       trials=st.one_of(st.none(), st.integers(-1, 3), st.booleans(), st.floats(allow_nan=True)))
def test_a_space_is_refused_when_read_or_samples_cleanly(space, trials):
    optuna = pytest.importorskip("optuna")
    from jnskr import tune as T

    doc = {"space": space} if trials is None else {"space": space, "trials": trials}
    try:
        parsed = T.parse_space(doc)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    with T.quiet_optuna():
        study = optuna.create_study(direction="maximize")
        for _ in range(2):
            trial = study.ask()
            for p in parsed.params:
                v = T.suggest(trial, p)
                if p.choices is None:
                    assert isinstance(v, (int, float)) and math.isfinite(v) and p.low <= v <= p.high + 1e-9
            study.tell(trial, 0.0)


LABEL = st.sampled_from(["a", "b", "c", "d", "r", "s", "é", "x y", "[b]", "#", " "])
LINE = st.one_of(st.tuples(LABEL, LABEL, LABEL).map("\t".join), st.just(""), st.just("a\tr"),
                 st.just("a\tr\tb\tc"), st.text(max_size=6))
TEXT = st.lists(LINE, max_size=6).map(lambda ls: "\n".join(ls) + ("\n" if ls else ""))
KG_FAST = ["--set", "dim=2", "--set", "train.epochs=1", "--set", "train.eval_every=1"]


@FUZZ
@given(train=TEXT, valid=TEXT, test=TEXT, raw=st.one_of(st.none(), st.binary(max_size=12)))
def test_a_kg_folder_trains_or_is_one_line(train, valid, test, raw, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "kg"
        d.mkdir()
        for name, text in (("train", train), ("valid", valid), ("test", test)):
            (d / f"{name}.txt").write_text(text)
        if raw is not None:
            (d / "test.txt").write_bytes(raw)
        out = Path(tmp) / "run"
        capsys.readouterr()
        rc = run(["kg", "train", "--data", str(d), "--out", str(out), *KG_FAST])
        _one_line_or_ok(rc, capsys.readouterr().err)
        assert out.is_dir() == (rc == 0)
        assert not [p for p in Path(tmp).iterdir() if p.name.startswith(".")]  # no lock, no temporary folder


@pytest.fixture(scope="module")
def kg_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("kgfuzz") / "run"
    assert run(["kg", "train", "--data", str(DATA / "kg_tiny"), "--out", str(out), *KG_FAST]) == 0
    return out


JSONISH = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-3, 10**12), st.text(max_size=3)),
                       lambda kids: st.one_of(st.lists(kids, max_size=3),
                                              st.dictionaries(st.sampled_from(["entity_ids", "relation_ids", "run_kind",
                                                                               "dim", "model", "x"]), kids, max_size=3)),
                       max_leaves=6)


@FUZZ
@given(name=st.sampled_from(["id_maps.json", "metrics.json", "config.yaml", "triples.safetensors",
                             "model.safetensors", "environment.json"]),
       content=st.one_of(JSONISH.map(lambda v: __import__("json").dumps(v).encode()), st.binary(max_size=40)))
def test_a_damaged_kg_run_folder_evaluates_or_is_one_line(kg_run, name, content, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        r = Path(tmp) / "r"
        shutil.copytree(kg_run, r)
        (r / name).write_bytes(content)
        capsys.readouterr()
        rc = run(["kg", "evaluate", str(r)])
        _one_line_or_ok(rc, capsys.readouterr().err)
