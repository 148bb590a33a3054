"""Python users and progress: the falling-validation warning, notebook progress, DataFrames out,
`from jnskr import Dataset`, the README's marked python blocks."""

import io
import logging
import re
import warnings
from pathlib import Path

import pytest

from conftest import REPO, synthetic_dataset, tiny_config
from jnskr.progress import FallingWatch, FanOut, NotebookProgress, check_falling, default_progress


def _records(scores, every=2):
    return [{"epoch": every * (k + 1), "loss": 1.0, "seconds": 0.1, "valid": {"recall@20": s}}
            for k, s in enumerate(scores)]


@pytest.mark.parametrize("scores,warns", [
    ([0.277, 0.25, 0.192], True),        # the kgcn-music case: falling from the first evaluation on
    ([0.277, 0.25, 0.30, 0.2, 0.1], False),   # it rose above the first: early stopping's business
    ([0.2, 0.25, 0.26], False),
    ([0.2, 0.19], False),                  # too few evaluations to say
    ([0.2, 0.19, 0.2], False),             # not two in a row below the first
])
def test_falling_rule(scores, warns):
    seen = []
    w = FallingWatch(emit=seen.append)
    w.start(0, 100, 10)
    for r in _records(scores):
        w.epoch_end(r)
        w.epoch_end({"epoch": r["epoch"] + 1, "loss": 1.0})  # epochs without evaluation are ignored
    assert bool(seen) == warns
    if warns:
        assert seen == ["validation recall@20 is falling since epoch 2: the preset may not suit this data; "
                        "see `jnskr presets` / `jnskr tune`"]


def test_falling_rule_warns_once_and_ignores_refit():
    seen = []
    w = FallingWatch(emit=seen.append)
    w.start(0, 100, 1)
    for r in _records([0.3, 0.2, 0.1, 0.05]):
        w.epoch_end(r)
    w.start(0, 2, 1)  # refit: no validation
    w.epoch_end({"epoch": 1, "loss": 2.0})
    assert len(seen) == 1
    assert check_falling([(2, 0.3), (4, 0.2), (6, 0.1)], metric="recall@20").startswith("validation recall@20")


def test_fit_warns_when_validation_falls(monkeypatch):
    """Through Recommender.fit: a Python warning (no progress object asked for)."""
    from jnskr.api import Recommender
    from jnskr.training import trainer as tr

    scores = iter([0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01])
    orig = tr.Trainer._fit

    def fake_validate_fit(self):
        real = self.validate
        if real is not None:  # the refit has no validation
            self.validate = lambda: {**real(), "recall@20": next(scores)}
        return orig(self)

    monkeypatch.setattr(tr.Trainer, "_fit", fake_validate_fit)
    cfg = tiny_config("jnskr", 8)
    with pytest.warns(UserWarning, match="falling since epoch"):
        Recommender(cfg).fit(synthetic_dataset())


def test_notebook_progress_without_tqdm_prints_lines():
    from jnskr.api import Recommender

    buf = io.StringIO()
    p = NotebookProgress(file=buf, use_tqdm=False)
    Recommender(tiny_config("jnskr", 4)).fit(synthetic_dataset(), progress=p)
    out = buf.getvalue()
    assert "training: at most 4 epochs" in out
    assert re.search(r"training: epoch \d+/≤4  loss [-\d.e+]+, validation recall@20 \d\.\d{4}", out)
    assert "refit: 4 epochs" in out


def test_notebook_progress_with_tqdm():
    pytest.importorskip("tqdm")
    from jnskr.api import Recommender

    buf = io.StringIO()
    Recommender(tiny_config("jnskr", 4)).fit(synthetic_dataset(), progress=NotebookProgress(file=buf))
    out = buf.getvalue()
    assert "training: epoch 4/≤4" in out and "validation recall@20" in out and "refit: epoch 4/4" in out
    assert "4/4 [" in out and "epoch/s" in out  # the bar counts epochs, not the batches of every epoch


def test_default_progress_choices(monkeypatch):
    import jnskr.progress as P

    assert isinstance(default_progress(True), NotebookProgress)
    auto = default_progress("auto")
    assert isinstance(auto, FanOut) and auto.watches_validation and not any(
        isinstance(p, NotebookProgress) for p in auto.parts)
    monkeypatch.setattr(P, "_in_notebook", lambda: True)
    assert isinstance(default_progress("auto"), NotebookProgress)
    mine = NotebookProgress()
    assert default_progress(mine) is mine


def test_dataset_is_exported_and_recommend_frame():
    pd = pytest.importorskip("pandas")
    from jnskr import Dataset, Recommender, build_config

    ds = synthetic_dataset()
    pairs = [(ds.user_ids[u], ds.item_ids[i]) for u in range(ds.n_users) for i in ds.train.row(u)]
    likes = pd.DataFrame(pairs, columns=["user", "item"])
    facts = pd.DataFrame({"head": [ds.item_ids[h] for h in ds.kg.heads], "relation": [f"r{r}" for r in ds.kg.relations],
                          "tail": [f"e{t}" for t in ds.kg.tails]})
    mine = Dataset.from_frames(likes, kg=facts, kg_ids="items")
    rec = Recommender(build_config("kgcn-music", overrides=["train.epochs=4", "device=cpu"])).fit(mine)
    assert 0.0 <= rec.metrics["test"]["recall@20"] <= 1.0
    df = rec.recommend_frame(["u1", "u2"], k=5)
    assert list(df.columns) == ["user", "item", "rank", "score", "item_name"]
    assert len(df) == 10 and df["rank"].tolist() == [1, 2, 3, 4, 5] * 2
    ids, scores = rec.recommend("u1", k=5)
    assert df[df.user == "u1"]["item"].tolist() == list(ids)


def test_recommend_frame_names():
    pytest.importorskip("pandas")
    from jnskr.api import Recommender

    rec = Recommender(tiny_config("jnskr", 2)).fit(synthetic_dataset())
    df = rec.recommend_frame("u3", k=3)
    assert df["item_name"].tolist() == [f"Item {i[1:]}" for i in df["item"]]


def _marked_blocks(path: Path, marker: str = "<!-- test -->") -> list[str]:
    text = path.read_text()
    return re.findall(re.escape(marker) + r"\s*```python\n(.*?)```", text, flags=re.S)


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    """The README's python blocks marked `<!-- test -->` run as written, in a folder holding the
    likes.csv / facts.csv they read (made from the synthetic data)."""
    pytest.importorskip("pandas")
    blocks = _marked_blocks(REPO / "README.md")
    assert blocks, "README.md has no python block marked <!-- test -->"
    ds = synthetic_dataset()
    (tmp_path / "likes.csv").write_text("user,item\n" + "".join(
        f"{ds.user_ids[u]},{ds.item_ids[i]}\n" for u in range(ds.n_users) for i in ds.train.row(u)))
    (tmp_path / "facts.csv").write_text("head,relation,tail\n" + "".join(
        f"{ds.item_ids[h]},r{r},e{t}\n" for h, r, t in zip(ds.kg.heads, ds.kg.relations, ds.kg.tails)))
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})


def test_build_config_with_a_data_name_explains_itself():
    from jnskr.config import build_config
    from jnskr.errors import ConfigError
    from jnskr.presets import unknown_preset

    msg = unknown_preset("my-data")
    assert "preset name" in msg and "overrides=" in msg and "Dataset.from_frames" in msg and "kgcn-music" in msg
    with pytest.raises(ConfigError, match="unknown preset 'my-data'"):
        build_config("my-data")


def test_data_validate_prints_each_warning_once(tmp_path, capsys):
    from test_cli import write_kgat
    from jnskr.cli.main import run

    folder = write_kgat(synthetic_dataset(), tmp_path / "synth")
    (folder / "extra.txt").write_text("x\n")
    assert run(["data", "validate", str(folder)]) == 0
    captured = capsys.readouterr()
    lines = [ln for ln in (captured.out + captured.err).splitlines() if "warning" in ln.lower() and "extra.txt" in ln]
    assert len(lines) == 1, lines
    logging.getLogger("jnskr").handlers.clear()
