"""Issue 21 item 7: the refit logs its loss on the evaluation schedule, so `jnskr report` draws a
refit curve (it logged F only after its last sweep: one point); every refit sweep has its record."""

import math

import pytest

from conftest import synthetic_dataset, tiny_config
from jnskr.api import Recommender
from jnskr.config import validate_config, config_to_dict
from jnskr.report import read_log


@pytest.mark.parametrize("beside", [False, True])
def test_refit_records_every_sweep_with_a_loss_curve(tmp_path, beside):
    d = config_to_dict(tiny_config("jnskr", 8))
    d["train"].update({"solver": "als", "eval_every": 2, "patience": 10, "refit_parallel": beside})
    rec = Recommender(validate_config(d)).fit(synthetic_dataset(), run_dir=tmp_path / "run", progress=False)
    n = rec.metrics["refit"]["epochs"]
    assert n >= 4, rec.metrics
    selection, refit = read_log(tmp_path / "run")
    assert [r["epoch"] for r in refit] == list(range(1, n + 1))  # every sweep
    with_loss = [r["epoch"] for r in refit if math.isfinite(r.get("loss", math.nan))]
    assert with_loss == [e for e in range(1, n + 1) if e % 2 == 0 or e == n]  # the evaluation schedule
    assert [r["epoch"] for r in selection if "loss" in r] == [e for e in range(1, 9) if e % 2 == 0]
