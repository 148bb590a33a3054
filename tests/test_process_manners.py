"""The library leaves the caller's process alone (issue: a library that behaves like one):
importing jnskr or fitting changes no environment variable, torch's thread count, torch's global
RNG or glibc's allocator; only the command line and the service apply process settings."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

_PROBE = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(3)
    torch.manual_seed(11)
    env0 = dict(os.environ)
    import jnskr
    after_import = dict(os.environ)
    from conftest import synthetic_dataset
    from jnskr import Recommender, build_config
    import jnskr.threads as th
    cfg = build_config("default", overrides=["train.epochs=2", "threads=1", "device=cpu"])
    Recommender(cfg).fit(synthetic_dataset())
    from jnskr.ops import cpu_gemm
    print(json.dumps({{"import_env": after_import == env0, "fit_env": dict(os.environ) == env0,
                      "threads": torch.get_num_threads(), "rng": float(torch.rand(1)),
                      "malloc": th.MALLOC_TUNED, "gemm": cpu_gemm()}}))
""")


def _run(code: str, **env) -> dict:
    full = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT",
                                                             "JNSKR_CPU_GEMM")}
    out = subprocess.run([sys.executable, "-c", code], env={**full, **env}, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_and_fit_leave_the_process_as_it_was():
    import torch

    got = _run(_PROBE.format(tests=os.path.dirname(__file__)))
    torch.manual_seed(11)
    assert got == {"import_env": True, "fit_env": True, "threads": 3, "rng": float(torch.rand(1)),
                   "malloc": None, "gemm": "torch"}


def test_the_scoring_gemm_does_not_depend_on_import_order():
    code = "import {first}; import {second}; from jnskr.ops import cpu_gemm; print('\"' + cpu_gemm() + '\"')"
    a = _run(code.format(first="numpy", second="jnskr"))
    b = _run(code.format(first="jnskr", second="numpy"))
    assert a == b == "torch"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator settings")
def test_the_command_line_applies_its_process_settings():
    code = ("import os, json, jnskr.cli, jnskr.threads as th; "
            "print(json.dumps([os.environ.get('OMP_WAIT_POLICY'), os.environ.get('OPENBLAS_THREAD_TIMEOUT'), "
            "os.environ.get('JNSKR_CPU_GEMM'), th.MALLOC_TUNED]))")
    assert _run(code) == ["PASSIVE", "4", "auto", True]
    # the user's own settings win
    assert _run(code, OMP_WAIT_POLICY="ACTIVE", JNSKR_CPU_GEMM="torch")[:3] == ["ACTIVE", "4", "torch"]


def test_jnskr_help_text_does_not_change_other_typer_apps():
    """cli/common monkeypatched typer's classes for the whole process: another typer app's help
    changed too.  The patches now live only while jnskr's command line runs."""
    from typer import core

    from jnskr.cli.main import run

    before = (core.TyperOption.__dict__.get("display_type_rich"), core.TyperArgument.__dict__.get("display_name_raw"))
    assert run(["train", "--help"]) == 0
    after = (core.TyperOption.__dict__.get("display_type_rich"), core.TyperArgument.__dict__.get("display_name_raw"))
    assert after == before
