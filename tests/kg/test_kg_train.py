"""Training, run folders, the Python API, the config and the `jnskr kg` CLI on tiny data."""

import json
import logging
from importlib import resources
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import jnskr.kg as kg
from jnskr.cli.kg import app
from jnskr.errors import ConfigError, JnskrError
from jnskr.kg.config import build_config, preset_dict, preset_for, preset_names
from jnskr.kg.data import KGData, read_triples_dir
from jnskr.kg.trainer import build_objective, fit

TINY = Path(__file__).parents[1] / "data" / "kg_tiny"
FAST = ["dim=4", "train.epochs=4", "train.eval_every=2", "train.batch_size=16"]


def synthetic(seed=0, groups=3, per=5, R=2) -> KGData:
    """Entities in groups; relation 0 links within a group, relation 1 to the next group
    (asymmetric).  Held-out triples are predictable from the rest."""
    gen = torch.Generator().manual_seed(seed)
    E = groups * per
    rows = []
    for h in range(E):
        for t in range(E):
            if h != t and h // per == t // per:
                rows.append((h, 0, t))
            if t // per == (h // per + 1) % groups:
                rows.append((h, 1, t))
    allt = torch.tensor(rows)[torch.randperm(len(rows), generator=gen)]
    n = allt.shape[0]
    return KGData("synthetic", [f"e{i}" for i in range(E)], [f"r{i}" for i in range(R)],
                  allt[: n - 20], allt[n - 20: n - 10], allt[n - 10:])


def test_training_learns_an_asymmetric_synthetic_kg():
    cfg = build_config("default", model="complex", overrides=["dim=8", "train.epochs=30", "train.lr=0.2", "train.threads=1",
                                                              "loss.neg_total=0.5", "train.batch_size=64"])
    res = fit(cfg, synthetic())
    assert res.metrics["test"]["kept"]["mrr"] > 0.6
    assert res.metrics["valid"]["kept"]["mrr"] > 0.6
    assert res.metrics["best_epoch"] >= 5


def test_reported_objective_equals_the_brute_force_objective():
    data = read_triples_dir(TINY)
    cfg = build_config("default", model="complex", overrides=[*FAST, "dtype=float64", "reg.weight=0.01"])
    res = fit(cfg, data)
    obj = build_objective(cfg, data)
    ref = float(obj.bruteforce(res.model.tables))
    assert res.metrics["objective_at_best"] == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("model", ["cp", "distmult"])
def test_als_sweeps_never_increase_the_objective_on_exact_models(model):
    data = read_triples_dir(TINY)
    cfg = build_config("default", model=model, overrides=[*FAST, "dtype=float64", "train.solver=als",
                                                          "reg.norm=l2", "reg.weight=0.1", "train.epochs=6",
                                                          "train.patience=10", "init_std=0.3"])
    res = fit(cfg, data)
    f = [h["objective"] for h in res.history]
    assert len(f) == 6
    if model == "cp":  # every block exact: F is monotone
        assert all(b <= a + 1e-10 * abs(a) for a, b in zip(f, f[1:]))


def test_run_folder_round_trip_and_api(tmp_path):
    run = tmp_path / "run"
    model = kg.train({"model": "cp", "dim": 4, "train": {"epochs": 4, "eval_every": 2}}, TINY, run_dir=run)
    assert {p.name for p in run.iterdir()} == {"model.safetensors", "triples.safetensors", "id_maps.json",
                                               "config.yaml", "metrics.json", "log.jsonl", "environment.json",
                                               "status.json"}  # the checkpoint is gone once finished
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    loaded = kg.load(run)
    assert loaded.entity_ids == model.entity_ids and loaded.relation_ids == model.relation_ids
    h, r = torch.tensor([0, 3]), torch.tensor([1, 2])
    s = loaded.score_tails(h, r)
    assert s.shape == (2, len(loaded.entity_ids)) and s.dtype == torch.float32 and torch.isfinite(s).all()
    assert torch.equal(s, model.score_tails(h, r))
    assert loaded.score_heads(r, h).shape == (2, len(loaded.entity_ids))
    env = json.loads((run / "environment.json").read_text())
    for key in ("seed", "torch_threads", "git_commit", "cpu_model", "torch", "dataset_fingerprint"):
        assert key in env
    metrics = json.loads((run / "metrics.json").read_text())
    for split in ("valid", "test"):
        assert set(metrics[split]) == {"kept", "dropped"}
    lines = (run / "log.jsonl").read_text().splitlines()
    assert len(lines) == metrics["epochs_run"] and "objective" in json.loads(lines[0])
    with pytest.raises(IndexError):
        loaded.score_tails(torch.tensor([99]), torch.tensor([0]))


def test_nothing_half_written_when_saving_fails(tmp_path, monkeypatch):
    import jnskr.runs as runs

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(runs, "write_yaml", boom)  # the run folder's first files: it appears whole or not at all
    with pytest.raises(JnskrError, match="cannot write"):
        kg.train({"dim": 2, "train": {"epochs": 2, "eval_every": 1}}, TINY, run_dir=tmp_path / "r")
    assert list(tmp_path.iterdir()) == []


def test_library_logs_through_the_jnskr_logger(caplog):
    with caplog.at_level(logging.INFO, logger="jnskr"):
        fit(build_config("default", overrides=FAST), read_triples_dir(TINY))
    assert any(r.name == "jnskr" and "valid MRR" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- config


def test_config_is_strict_and_range_checked():
    for bad in (["nope=1"], ["dim=0"], ["train.lr=0"], ["loss.neg_total=-1"], ["loss.neg_head=popular"],
                ["train.solver=als", "reg.norm=n3", "reg.weight=0.1"], ["train.epochs"]):
        with pytest.raises(ConfigError):
            build_config("default", overrides=bad)
    with pytest.raises(ConfigError, match="unknown KG model"):
        build_config("default", model="transe")
    with pytest.raises(ConfigError, match="unknown KG preset"):
        build_config("nope")


def test_presets_load_every_model_and_comment_every_key():
    assert {"default", "nations", "umls", "kinship", "fb15k-237", "wn18rr"} <= set(preset_names())
    for name in preset_names():
        raw = preset_dict(name)
        for model in kg.MODELS:
            build_config(name, model=model)
        text = (resources.files("jnskr.kg.presets") / f"{name}.yaml").read_text()
        for no, line in enumerate(text.splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#") and not line.rstrip().endswith(":"):
                assert "#" in line, f"{name}.yaml:{no}: key without a comment"
        assert isinstance(raw, dict)


def test_preset_is_picked_by_folder_name_case_insensitively():
    assert preset_for("UMLS") == "umls" and preset_for("Kinships") == "kinship"
    assert preset_for("FB15k-237") == "fb15k-237" and preset_for("my-folder") == "default"
    assert build_config(preset_for("umls"), model="distmult").model == "distmult"


# ----------------------------------------------------------------------------- CLI


def _invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_train_evaluate_predict(tmp_path):
    run = tmp_path / "run"
    res = _invoke(["train", "--data", TINY, "--model", "distmult", "--out", run, *sum((["--set", s] for s in FAST), [])])
    assert res.exit_code == 0, res.output
    assert "MRR" in res.output and "dropped" in res.output and "saved run to" in res.output
    metrics = json.loads((run / "metrics.json").read_text())
    res = _invoke(["evaluate", run])
    assert res.exit_code == 0 and f"{metrics['test']['kept']['mrr']:.4f}" in res.output
    res = _invoke(["predict", run, "--head", "anna", "--relation", "lives_in", "--k", "3"])
    assert res.exit_code == 0 and "oslo" in res.output and "train" in res.output
    res = _invoke(["predict", run, "--relation", "lives_in", "--tail", "rome"])
    assert res.exit_code == 0 and "ben" in res.output


@pytest.mark.parametrize("args,message", [
    (["train", "--data", TINY, "--dataset", "umls"], "exactly one of --dataset"),
    (["train", "--data", TINY, "--set", "dim=0"], "dim"),
    (["train", "--data", TINY, "--set", "bogus=1"], "bogus"),
    (["train", "--data", "/no/such/folder"], "not a folder"),
    (["evaluate", "/no/such/run"], "not found"),
])
def test_cli_user_errors_are_one_line_and_exit_2(args, message):
    res = _invoke(args)
    assert res.exit_code == 2, res.output
    assert message in res.output and res.output.count("error:") == 1


def test_cli_bad_data_names_file_and_line(tmp_path):
    for n, text in (("train", "a\tr\tb\n"), ("valid", "a\tr\tb\n"), ("test", "a\tq\tb\n")):
        (tmp_path / f"{n}.txt").write_text(text)
    res = _invoke(["train", "--data", tmp_path, "--out", tmp_path / "out"])
    assert res.exit_code == 2 and "test.txt:1:" in res.output and "'q'" in res.output
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_non_empty_out_and_escapes_markup(tmp_path):
    (tmp_path / "x").write_text("")
    res = _invoke(["train", "--data", TINY, "--out", tmp_path])
    assert res.exit_code == 2 and "not an empty folder" in res.output
    run = tmp_path / "run"
    assert _invoke(["train", "--data", TINY, "--out", run, *sum((["--set", s] for s in FAST), [])]).exit_code == 0
    res = _invoke(["predict", run, "--head", "[bold]x", "--relation", "lives_in"])
    assert res.exit_code == 2 and "[bold]x" in res.output


def test_trace_test_records_a_test_curve_without_changing_training_or_selection():
    cfg = build_config("default", model="complex", overrides=["dim=8", "train.epochs=12", "train.eval_every=3",
                                                              "train.lr=0.2", "train.threads=1", "loss.neg_total=0.5",
                                                              "train.batch_size=64"])
    plain, traced = fit(cfg, synthetic()), fit(cfg, synthetic(), trace_test=True)
    assert [h["objective"] for h in plain.history] == [h["objective"] for h in traced.history]
    assert plain.metrics["best_epoch"] == traced.metrics["best_epoch"]
    assert plain.metrics["test"] == traced.metrics["test"]
    rows = [h for h in traced.history if "valid_mrr" in h]
    assert rows and all("test_mrr" in h and "test_hits@10" in h for h in rows)
    assert not any("test_mrr" in h for h in plain.history)
    best = next(h for h in rows if h["epoch"] == traced.metrics["best_epoch"])
    assert best["test_mrr"] == pytest.approx(traced.metrics["test"]["kept"]["mrr"])
    assert all(h["train_seconds"] <= h["seconds"] for h in traced.history)
    assert traced.metrics["train_seconds_to_best"] <= traced.metrics["seconds_to_best"]


def test_kg_training_keeps_freed_memory_for_reuse_only_from_the_command_line():
    """`jnskr kg` as every other computing command: glibc's re-mapping of freed temporaries cost
    ~22% of a UMLS ComplEx run (11.4 -> 8.9 s training, same metrics).  The setting is the command
    line's (`jnskr.threads.cli_process_setup`); the library's `fit` leaves the allocator alone."""
    import subprocess
    import sys

    code = ("import jnskr.threads as th, jnskr.kg.trainer; a = th.MALLOC_TUNED; import jnskr.cli.kg; "
            "print(a, th.MALLOC_TUNED)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["None", "True"]
