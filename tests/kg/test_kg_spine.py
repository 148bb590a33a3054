"""`jnskr kg` on the shared spine: one registry, the project's YAML reader and Strict base, the
recommender's row solver and Gram ops, one DistMult formula, and resume / stop / progress."""

import pytest
import torch

from jnskr.data.config import Strict
from jnskr.errors import ConfigError, JnskrError
from jnskr.kg.config import KGConfig, _load_yaml, build_config
from jnskr.kg.models import MODELS, get_model
from jnskr.registry import Registry


# ----------------------------------------------------------------------------- registry and config


def test_registry_registers_looks_up_and_names_the_known_ones():
    reg = Registry("widget")

    @reg.register
    class A:
        name = "a"

    b = reg.register(object(), name="b")
    assert reg.get("a") is A and reg["b"] is b and reg.names() == ["a", "b"] and list(reg) == ["a", "b"]
    assert "a" in reg and "c" not in reg and len(reg) == 2
    with pytest.raises(JnskrError, match=r"^unknown widget 'c' \(known: a, b\)$"):
        reg.get("c")
    reg.register(A)  # the same object again: no-op
    with pytest.raises(ValueError, match="registered twice"):
        reg.register(object(), name="a")


def test_kg_models_live_in_the_shared_registry():
    assert isinstance(MODELS, Registry) and MODELS.names() == ["distmult", "complex", "cp"]
    with pytest.raises(ConfigError, match=r"unknown KG model 'transe' \(known: complex, cp, distmult\)"):
        get_model("transe")


def test_kg_config_uses_the_project_strict_base():
    assert issubclass(KGConfig, Strict)


def test_kg_yaml_is_read_by_yamlsafe_duplicate_keys_and_depth(tmp_path):
    with pytest.raises(ConfigError, match=r"^preset x:2: duplicate key 'a' \(first on line 1\)$"):
        _load_yaml("a: 1\na: 2\n", "preset x")
    with pytest.raises(ConfigError, match="nested more than"):
        _load_yaml("a: " + "[" * 40 + "]" * 40 + "\n", "preset x")
    with pytest.raises(ConfigError, match="duplicate key 'c_pos'"):  # plain yaml.safe_load kept the last one
        build_config("default", overrides=["loss={c_pos: 1, c_pos: 2}"])


# ----------------------------------------------------------------------------- one DistMult, one Gram op


def _rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def test_jnskr_kg_term_and_kg_distmult_are_one_formula():
    """JNSKR's KG loss (`jnskr.losses.nonsampling_kg_loss`: batch heads weighted by w⁻, every
    relation and tail) is `jnskr kg`'s non-sampling loss with separate head/tail tables (CP's form,
    DistMult's single term) and weights a = w⁻, b = g = 1: equal to each other and to both
    brute-force twins, in value and gradient (float64)."""
    from jnskr.kg.losses import DISTMULT, nonsampling_kge_loss, nonsampling_kge_loss_bruteforce
    from jnskr.losses import nonsampling_kg_loss, nonsampling_kg_loss_bruteforce

    gen = torch.Generator().manual_seed(3)
    B, R, T, d, n = 5, 3, 7, 4, 30
    tabs = [torch.randn(k, d, generator=gen, dtype=torch.float64, requires_grad=True) for k in (B, R, T)]
    key = torch.randperm(B * R * T, generator=gen)[:n]
    pos = torch.stack([key // (R * T), (key // T) % R, key % T], 1)
    w_neg = torch.rand(B, generator=gen, dtype=torch.float64) + 0.2
    ones_r, ones_t = torch.ones(R, dtype=torch.float64), torch.ones(T, dtype=torch.float64)
    jn = nonsampling_kg_loss(*tabs, pos[:, 0], pos[:, 1], pos[:, 2], 1.5, w_neg)
    kg = nonsampling_kge_loss(DISTMULT, *tabs, pos, 1.5, w_neg, ones_r, ones_t)
    brute_jn = nonsampling_kg_loss_bruteforce(*tabs, pos[:, 0], pos[:, 1], pos[:, 2], 1.5, w_neg)
    brute_kg = nonsampling_kge_loss_bruteforce(DISTMULT, *tabs, pos, 1.5, w_neg, ones_r, ones_t)
    assert float(jn.detach()) == float(kg.detach())  # the same terms in the same order: bit for bit
    for x in (brute_jn, brute_kg):
        assert _rel_err((jn + 1.5 * n).detach(), x.detach()) <= 1e-10
    g_jn, g_kg = torch.autograd.grad(jn, tabs), torch.autograd.grad(kg, tabs)
    g_b = torch.autograd.grad(brute_kg, tabs)
    for a, b, c in zip(g_jn, g_kg, g_b):
        assert torch.equal(a, b) and _rel_err(a, c) <= 1e-10


def test_kg_uses_the_shared_gram_ops_and_formula():
    import inspect
    import sys

    import jnskr.kg.losses as kl
    import jnskr.kg.objective as ko
    import jnskr.kg.solver as ks

    gram = sys.modules["jnskr.losses.gram"]  # the package's `gram` attribute is the function

    assert kl.weighted_gram is gram.weighted_gram and ks.weighted_gram is gram.weighted_gram
    assert ko.weighted_grams_with_rows is gram.weighted_grams_with_rows
    for mod in (kl, ko, ks):
        assert "autograd.Function" not in inspect.getsource(mod).replace("_N3(torch.autograd.Function)", "")
    assert "kg_allpairs_term" in inspect.getsource(kl.allpairs) and "positive_term" in inspect.getsource(kl.positive_part)


def test_weighted_grams_with_rows_equal_the_separate_ops():
    from jnskr.losses.gram import weighted_gram, weighted_grams_with_rows

    gen = torch.Generator().manual_seed(2)
    x = torch.randn(9, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    w1, w2 = torch.rand(9, generator=gen, dtype=torch.float64), torch.rand(9, generator=gen, dtype=torch.float64)
    idx = torch.tensor([0, 4, 4, 8])
    up = [torch.randn(3, 3, generator=gen, dtype=torch.float64) for _ in range(2)] + \
        [torch.randn(4, 3, generator=gen, dtype=torch.float64)]
    (g1, g2), rows = weighted_grams_with_rows(x, idx, [w1, w2])
    ref = [weighted_gram(x, w1), weighted_gram(x, w2), x.index_select(0, idx)]
    for a, b in zip((g1, g2, rows), ref):
        assert _rel_err(a.detach(), b.detach()) <= 1e-12
    (ga,) = torch.autograd.grad(sum((o * u).sum() for o, u in zip((g1, g2, rows), up)), x)
    (gb,) = torch.autograd.grad(sum(((o * u).sum() for o, u in zip(
        [((x * w1[:, None]).T @ x), ((x * w2[:, None]).T @ x), x[idx]], up))), x)
    assert _rel_err(ga, gb) <= 1e-12


# ----------------------------------------------------------------------------- the ALS row solver


def test_kg_als_blocks_are_solved_by_the_recommender_row_solver(monkeypatch):
    """`jnskr kg`'s exact blocks go through `jnskr.training.blocks.solve_rows` (its Cholesky and its
    least-squares fallback for singular rows), and the singular fallback is the recommender's."""
    import jnskr.kg.solver as ks
    import jnskr.training.blocks as blocks
    from jnskr.kg.objective import Objective
    from test_kg_losses import problem

    calls = []
    monkeypatch.setattr(ks, "solve_rows", lambda *a, **k: calls.append(a[0]) or blocks.solve_rows(*a, **k))
    spec, tables, pos, a, b, g = problem("cp", 0, n_e=7, n_r=4, d=3, n_pos=30)
    tables = {k: v.detach() for k, v in tables.items()}
    keep = pos[:, 0] != 0  # b = 0: K = 0, so head row 0 (no positives, λ = 0) has a zero system
    obj = Objective(spec, pos[keep], 1.0, a, b * 0, g, reg="l2", lam=0.0)
    new = ks.solve_block(obj, tables, 0)
    assert calls == [7] and torch.isfinite(new).all()
    A, rhs = ks.block_systems(obj, tables, 0)
    assert float(A[0].abs().max()) == 0.0  # row 0: no positives, no negatives, no ridge
    assert torch.allclose(new.double(), blocks.spd_solve(A, rhs), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- resume, Ctrl-C, progress

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
from pathlib import Path  # noqa: E402

import jnskr.kg as kg  # noqa: E402
from jnskr import stop  # noqa: E402

TINY = Path(__file__).parents[1] / "data" / "kg_tiny"


def _synthetic():
    from test_kg_train import synthetic

    return synthetic()


def _cfg(model, solver):
    extra = ["reg.norm=l2", "reg.weight=0.05"] if solver == "als" else ["reg.weight=0.01"]
    return build_config("default", model=model, overrides=[
        "dim=6", "train.epochs=9", "train.eval_every=2", "train.lr=0.2", "train.threads=1", "loss.neg_total=0.5",
        "train.batch_size=32", f"train.solver={solver}", "train.patience=10", "loss.neg_head=degree", *extra])


class Record:
    """A progress object that remembers its calls (and can send a signal at an epoch's end)."""

    def __init__(self, signal_at=None):
        self.calls, self.signal_at = [], signal_at

    def start(self, done, total, per_epoch):
        self.calls.append(("start", done, total, per_epoch))

    def batch(self, epoch, loss):
        self.calls.append(("batch", epoch))

    def epoch_end(self, record):
        self.calls.append(("epoch_end", record))
        if record["epoch"] == self.signal_at:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the epoch's checkpoint is not yet written

    def close(self):
        self.calls.append(("close",))


def _figures(run):
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    metrics = json.loads((run / "metrics.json").read_text())
    return ([(r["epoch"], r["objective"], r.get("valid_mrr")) for r in rows],
            metrics["valid"], metrics["test"], metrics["best_epoch"], metrics["epochs_run"])


@pytest.mark.parametrize("model,solver", [("complex", "adagrad"), ("cp", "als"), ("distmult", "adam")])
def test_ctrl_c_checkpoints_and_resume_is_exact(model, solver, tmp_path):
    cfg, data = _cfg(model, solver), _synthetic()
    whole = kg.train(cfg, data, run_dir=tmp_path / "whole", progress=False)
    part = tmp_path / "part"
    with stop.handle_signals(), pytest.raises(stop.Interrupted) as info:
        kg.train(cfg, data, run_dir=part, progress=Record(signal_at=3))
    assert info.value.exit_code == 130 and info.value.epoch == 3 and info.value.run_dir == part
    assert "jnskr kg train --resume" in info.value.kept
    status = json.loads((part / "status.json").read_text())
    assert status["status"] == "interrupted" and status["resumable_from_epoch"] == 3
    assert not (part / "metrics.json").exists() and len((part / "log.jsonl").read_text().splitlines()) == 3
    with pytest.raises(JnskrError, match="not finished.*--resume"):
        kg.load(part)
    rec = Record()
    resumed = kg.resume(part, progress=rec)
    assert rec.calls[0][:3] == ("start", 3, 9)
    assert _figures(part) == _figures(tmp_path / "whole")  # per-epoch F and validation MRR, metrics: exact
    for k in whole.tables:
        assert torch.equal(resumed.tables[k], whole.tables[k])
    assert not (part / "checkpoint").exists()
    with pytest.raises(JnskrError, match="finished; nothing to resume"):
        kg.resume(part)


def test_checkpoint_is_safetensors_and_weights_only_state(tmp_path):
    with stop.handle_signals(), pytest.raises(stop.Interrupted):
        kg.train(_cfg("complex", "adagrad"), _synthetic(), run_dir=tmp_path / "r", progress=Record(signal_at=1))
    ck = tmp_path / "r" / "checkpoint"
    assert {p.name for p in ck.iterdir()} == {"model.safetensors", "best.safetensors", "trainer.pt"}
    state = torch.load(ck / "trainer.pt", weights_only=True)
    assert state["state"]["epoch"] == 1 and isinstance(state["rng"], torch.Tensor)


def test_cli_ctrl_c_exits_143_with_the_resume_command_then_resumes(tmp_path, monkeypatch, capfd):
    from jnskr.cli.main import run as cli
    from jnskr.kg.trainer import KGTrainer

    fast = ["--set", "dim=4", "--set", "train.epochs=6", "--set", "train.eval_every=2", "--set", "train.batch_size=16"]
    assert cli(["kg", "train", "--data", str(TINY), "--model", "cp", "--out", str(tmp_path / "whole"), *fast]) == 0
    evaluate = KGTrainer._evaluate

    def evaluate_then_sigterm(self, *a):
        evaluate(self, *a)
        if self.state.epoch == 1:  # the evaluation of epoch 2 (state.epoch is set after it)
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(KGTrainer, "_evaluate", evaluate_then_sigterm)
    run = tmp_path / "run"
    capfd.readouterr()
    rc = cli(["kg", "train", "--data", str(TINY), "--model", "cp", "--out", str(run), *fast])
    assert rc == 143
    err = " ".join(capfd.readouterr().err.split())
    assert f"interrupted by SIGTERM: {run} is marked interrupted, its checkpoint holds epoch 2; resume with: " \
           f"jnskr kg train --resume {run}" in err
    assert json.loads((run / "status.json").read_text())["resumable_from_epoch"] == 2
    monkeypatch.setattr(KGTrainer, "_evaluate", evaluate)
    assert cli(["kg", "train", "--resume", str(run), "--model", "cp"]) == 2  # --resume takes only the folder
    assert cli(["kg", "train", "--resume", str(run)]) == 0
    assert _figures(run) == _figures(tmp_path / "whole")


def test_progress_objects_of_jnskr_train_see_every_step_and_the_eta(tmp_path):
    from jnskr.progress import LogProgress

    rec = Record()
    cfg = _cfg("distmult", "als")  # one Adagrad epoch of the entity table, then the relation block
    kg.train(cfg, _synthetic(), progress=rec)
    start = rec.calls[0]
    n_pos = 2 * (_synthetic().train.shape[0])
    assert start == ("start", 0, 9, -(-n_pos // 32) + 1)
    assert sum(c[0] == "batch" for c in rec.calls) == 9 * start[3] and rec.calls[-1] == ("close",)
    ends = [c[1] for c in rec.calls if c[0] == "epoch_end"]
    assert [e["epoch"] for e in ends] == list(range(1, 10))
    assert [e["epoch"] for e in ends if "valid" in e] == [2, 4, 6, 8, 9] and all("mrr" in e["valid"] for e in ends
                                                                                 if "valid" in e)
    from jnskr.kg.run import progress_for

    assert isinstance(progress_for("auto"), LogProgress)  # off a terminal: plain lines
    assert progress_for(False) is None


def test_cli_progress_is_plain_lines_off_a_terminal(tmp_path, capfd):
    from jnskr.cli.main import run as cli

    assert cli(["kg", "train", "--data", str(TINY), "--out", str(tmp_path / "r"), "--set", "dim=4",
                "--set", "train.epochs=4", "--set", "train.eval_every=2"]) == 0
    assert "training: at most 4 epochs, early stop after 4 evaluations" in capfd.readouterr().err


# ----------------------------------------------------------------------------- the downloader


def test_kg_fetches_through_jnskr_data_download(tmp_path, monkeypatch):
    import jnskr.data.download as download
    from jnskr.data.catalogue import git_blob_id
    from jnskr.kg import datasets
    from test_kg_data import _tiny_archive

    assert datasets.git_blob_id is git_blob_id
    monkeypatch.setenv("JNSKR_DATA", str(tmp_path / "cache"))
    served, info = _tiny_archive(tmp_path)
    monkeypatch.setitem(datasets.REGISTRY, "tiny", info)
    urls = []
    monkeypatch.setattr(download, "download_bytes", lambda url, hint="": urls.append(url) or
                        (served / "tiny.tar.gz").read_bytes())
    dest = datasets.fetch("tiny", base_url="https://example.invalid/kg")
    assert urls == ["https://example.invalid/kg/tiny.tar.gz"] and (dest / "train.txt").is_file()
    asked = []
    monkeypatch.setattr(download, "pip_download_wheel", lambda req, tmp: asked.append(req) or
                        (_ for _ in ()).throw(JnskrError(f"pip download {req} failed: offline")))
    with pytest.raises(JnskrError, match="pip download pykeen==1.11.1 failed"):
        datasets.fetch("tiny", source="pykeen", force=True)
    assert asked == ["pykeen==1.11.1"]


def test_a_bad_value_names_where_it_came_from():
    """A bad value is one line naming its origin, as `jnskr.config` does (was: "invalid KG config:
    dim: ..." without the --set, the file or the preset that gave it)."""
    from jnskr.errors import ConfigError
    from jnskr.kg.config import build_config

    with pytest.raises(ConfigError, match=r"^--set dim=-3: dim: Input should be greater than or equal to 1$"):
        build_config(overrides=["dim=-3"])
    with pytest.raises(ConfigError, match=r"^--set train\.nope=1: train\.nope: unknown key$"):
        build_config(overrides=["train.nope=1"])
    with pytest.raises(ConfigError, match=r"^the given config: dim: "):
        build_config(extra={"dim": 0})


class SignalInBatch(Record):
    """Sends SIGTERM after the `k`-th step (batch or exact block) of 0-based epoch `epoch`."""

    def __init__(self, epoch, k):
        super().__init__()
        self.epoch, self.k, self.seen = epoch, k, 0

    def batch(self, epoch, loss):
        super().batch(epoch, loss)
        if epoch == self.epoch:
            self.seen += 1
            if self.seen == self.k:
                os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("model,solver", [("complex", "adagrad"), ("cp", "als")])
def test_a_signal_inside_an_epoch_stops_at_the_next_batch_and_resumes_exactly(model, solver, tmp_path, monkeypatch):
    """As `jnskr train`: the stop comes at the next batch (or exact block), not at the epoch's end
    (was: the whole epoch ran on); the unfinished epoch leaves no log line, the folder keeps its last
    checkpoint (here every epoch is worth one: CHEAP 0), and the resumed run equals the uninterrupted one."""
    from jnskr.training import checkpoint as ck

    monkeypatch.setattr(ck, "CHEAP", 0.0)
    cfg, data = _cfg(model, solver), _synthetic()
    whole = kg.train(cfg, data, run_dir=tmp_path / "whole", progress=False)
    part = tmp_path / "part"
    rec = SignalInBatch(epoch=4, k=1)  # epoch 5 (1-based), after its first step
    with stop.handle_signals(), pytest.raises(stop.Interrupted) as info:
        kg.train(cfg, data, run_dir=part, progress=rec)
    assert info.value.exit_code == 143 and info.value.epoch == 4
    assert [c for c in rec.calls if c[0] == "batch" and c[1] == 4] == [("batch", 4)]  # no step after the signal
    assert json.loads((part / "status.json").read_text())["resumable_from_epoch"] == 4
    assert len((part / "log.jsonl").read_text().splitlines()) == 4  # the unfinished epoch 5 left no line
    resumed = kg.resume(part, progress=False)
    assert _figures(part) == _figures(tmp_path / "whole")
    for k in whole.tables:
        assert torch.equal(resumed.tables[k], whole.tables[k])
