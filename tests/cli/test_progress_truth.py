"""Issue 21 item 5: progress and time that tell the truth -- lines off a terminal, ETAs from the
early-stopping rule (or marked ``≤``), tqdm counting epochs, piped output never wrapped at 80
columns, `weights:` logged once, the registered data's warnings as one line, the ml-100k fetch
naming its source and licence."""

import logging

import pytest

from conftest import synthetic_dataset, tiny_config
from jnskr.eta import StopEstimate, phase_text, remaining_text, tell_schedule
from jnskr.progress import FanOut, LogProgress, NotebookProgress


def _told(p, eval_every=2, patience=3):
    tell_schedule(FanOut(p), eval_every, patience, "recall@20")
    return p


def test_estimate_follows_the_best_epoch():
    s = _told(LogProgress()).stop
    assert s.end(101) == 8  # first evaluation at 2, then 3 without improvement
    s.see({"epoch": 10, "valid": {"recall@20": 0.3}})
    s.see({"epoch": 12, "valid": {"recall@20": 0.2}})  # worse: the end stays
    assert s.end(101) == 16 and s.end(12) == 12
    assert phase_text("training", 11, 101, s) == "training: epoch 11 (early stop ~16, at most 101)"
    assert phase_text("training", 11, 101, StopEstimate()) == "training: epoch 11/≤101"  # not told: a bound
    assert remaining_text(2.0, 11, 101, s) == "about 10 s left"
    assert remaining_text(2.0, 11, 101, StopEstimate()) == "≤ 3 min left"  # to the cap, and says so


def test_log_progress_lines_carry_the_estimate(caplog):
    now = [0.0]
    p = _told(LogProgress(every=30, clock=lambda: now[0]))
    with caplog.at_level(logging.INFO, logger="jnskr"):
        p.start(0, 101, 1)  # sweeps: one unit per epoch
        for e in range(1, 4):
            now[0] += 31
            p.epoch_end({"epoch": e, "loss": 1.0})  # a line per (long) sweep
    lines = [r.getMessage() for r in caplog.records if r.name == "jnskr"]
    assert lines[0] == ("training: at most 101 epochs, early stop after 3 evaluations without improvement "
                        "(one every 2)")
    assert lines[1] == "training: epoch 1 (early stop ~8, at most 101) done, loss 1, 31 s, about 4 min left"
    assert len(lines) == 4


def test_cli_off_a_terminal_prints_lines(monkeypatch):
    """Was: nothing between evaluations off a terminal (the bar only on a TTY)."""
    from jnskr.cli import common
    from jnskr.cli.progress import RichProgress, make_progress

    monkeypatch.setattr(common.sys.stderr, "isatty", lambda: False, raising=False)
    monkeypatch.setitem(common.STATE, "quiet", False)
    assert any(isinstance(p, LogProgress) for p in make_progress().parts)
    monkeypatch.setitem(common.STATE, "quiet", True)
    assert not any(isinstance(p, (LogProgress, RichProgress)) for p in make_progress().parts)


def test_rich_bar_total_is_the_expected_end_not_the_cap():
    from rich.console import Console

    from jnskr.cli.progress import RichProgress

    bar = _told(RichProgress(console=Console(file=open("/dev/null", "w"), force_terminal=True)))
    bar.start(0, 101, 10)
    assert bar.p.tasks[0].total == 80  # 8 expected sweeps x 10 batches, not 101 x 10
    bar.epoch_end({"epoch": 10, "loss": 1.0, "valid": {"recall@20": 0.3}})
    assert bar.p.tasks[0].total == 160 and "early stop ~16" in bar.p.tasks[0].description
    bar.close()
    bar.start(0, 7, 10)  # the refit: exactly its epochs
    assert bar.p.tasks[0].total == 70 and bar.p.tasks[0].description == "refit: epoch 1/7"
    bar.close()


def test_tqdm_counts_epochs():
    pytest.importorskip("tqdm")
    import io

    p = _told(NotebookProgress(file=io.StringIO()))
    p.start(0, 101, 50)
    assert p.bar.total == 8 and p.bar.unit == "epoch"  # was 101 x 50 = 5050 batches
    for _ in range(50):
        p.batch(0, 1.0)
    assert p.bar.n == 0
    p.epoch_end({"epoch": 2, "loss": 1.0, "valid": {"recall@20": 0.3}})
    assert p.bar.n == 2 and p.bar.total == 8
    p.close()


def test_piped_output_is_not_wrapped(tmp_path, capsys, monkeypatch):
    """Was: rich's 80 columns off a terminal split long paths in `run saved to ...`."""
    from test_cli import FAST, write_kgat
    from jnskr.cli.main import run

    monkeypatch.delenv("COLUMNS", raising=False)
    data = write_kgat(synthetic_dataset(), tmp_path / "synth")
    out = tmp_path / ("a-rather-long-folder-name-" * 4) / "run"
    assert run(["train", "--data", str(data), "--out", str(out), *FAST]) == 0
    text = capsys.readouterr().out
    assert any(str(out) in line for line in text.splitlines())


def test_weights_logged_once(caplog):
    """Was: once for selection and once for the refit's trainer."""
    from jnskr.api import Recommender

    with caplog.at_level(logging.INFO, logger="jnskr"):
        Recommender(tiny_config("jnskr", 4)).fit(synthetic_dataset(), progress=False)
    assert sum(r.getMessage().startswith("weights:") for r in caplog.records if r.levelno == logging.INFO) == 1


def test_registered_data_warnings_are_one_info_line(caplog):
    from jnskr.data import registry

    ds = synthetic_dataset()
    ds.warnings = ["column 'rating' ignored", "link_only: 3 dropped", "2 cold test items"]
    with caplog.at_level(logging.INFO, logger="jnskr"):
        registry._log(ds, True, known="registered data, as prepared")
    recs = [r for r in caplog.records if r.name == "jnskr"]
    assert len(recs) == 1 and recs[0].levelno == logging.INFO and "2 cold test items" in recs[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="jnskr"):
        registry._log(ds, True)  # the user's own data: each warning is a warning
    assert [r.levelno for r in caplog.records] == [logging.WARNING] * 3


def test_ml100k_fetch_names_source_and_licence(monkeypatch, caplog):
    from jnskr.data import registry

    monkeypatch.setattr(registry, "is_fetched", lambda name: False)
    monkeypatch.setattr(registry, "fetch_ml100k", lambda dest: dest)
    with caplog.at_level(logging.INFO, logger="jnskr"):
        registry.fetch("ml-100k")
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "recbole" in msg and "PyPI" in msg and "licence: MovieLens data (GroupLens)" in msg
