"""CLI output details of issue 21 item 13: no `-0.0000`, tune's table whole at 80 columns, and a note
when every tune trial was stopped by the epoch cap rather than by the search."""

from types import SimpleNamespace

import pytest

from conftest import synthetic_dataset
from jnskr.cli.common import fixed

LONG_SPACE = """\
space:
  jnskr.keep_prob: [[0.8, 0.7]]
  jnskr.lambda_emb: {low: 1.0e-4, high: 1.0e-1, log: true}
  jnskr.embed_dim: {low: 4, high: 8, step: 4}
  jnskr.attention_dim: {low: 4, high: 8, step: 4}
"""
FAST = ["device=cpu", "train.epochs=2", "train.batch_size=16", "eval.ks=[5,10]", "jnskr.c0=20", "jnskr.c1=20"]


@pytest.mark.parametrize("value, spec, shown", [(-0.00001, ".4f", "0.0000"), (-1e-6, "+.4f", "+0.0000"),
                                                (-0.0, ".4f", "0.0000"), (-0.00006, ".4f", "-0.0001"),
                                                (-0.5, "+.4f", "-0.5000"), (1e-9, "+.4f", "+0.0000"),
                                                (-1e-9, ".2%", "0.00%")])
def test_numbers_that_round_to_zero_print_without_a_minus(value, spec, shown):
    assert fixed(value, spec) == shown


def _trial(best, run, state="COMPLETE"):
    return SimpleNamespace(state=SimpleNamespace(name=state), user_attrs={"best_epoch": best, "epochs_run": run})


def test_the_cap_note_only_when_every_completed_trial_ran_to_its_cap():
    from jnskr.cli.tune import cap_note

    note = cap_note([_trial(40, 40), _trial(40, 40), _trial(5, 15, "PRUNED")])
    assert note.startswith("note: all 2 trials were best at the last epoch (40 epochs)")
    assert "--set train.epochs=80" in note
    assert cap_note([_trial(40, 40), _trial(25, 40)]) is None  # one trial peaked before the cap
    assert cap_note([_trial(20, 35)]) is None  # early-stopped
    assert cap_note([]) is None


def test_tune_prints_whole_key_names_at_80_columns_and_the_cap_note(tmp_path, capsys, monkeypatch):
    pytest.importorskip("optuna")
    from jnskr.cli.main import run
    from test_cli import write_kgat

    monkeypatch.setenv("COLUMNS", "80")
    space = tmp_path / "space.yaml"
    space.write_text(LONG_SPACE)
    data = write_kgat(synthetic_dataset(), tmp_path / "synth")
    args = ["tune", str(space), "--data", str(data), "--study", str(tmp_path / "s.db"), "--trials", "1"]
    assert run([*args, *sum((["--set", s] for s in FAST), [])]) == 0
    out = capsys.readouterr().out
    table = out[out.index("trials, best first"):]
    header = next(ln for ln in table.splitlines() if "trial" in ln and "state" in ln)
    for key in ("jnskr.keep_prob", "jnskr.lambda_emb", "jnskr.embed_dim", "jnskr.attention_dim"):
        assert key in header, table
    assert "…" not in table
    assert "note: the trial was best at the last epoch (2 epochs)" in " ".join(out.split())


def test_explanation_lines_never_print_minus_zero():
    from jnskr.cli.use import _fmt_fact

    line = _fmt_fact({"relation": "genre", "entity": "m.1", "alpha": 0.5, "contribution": -1e-7})
    assert line.endswith("+0.0000") and "-0.0000" not in line
