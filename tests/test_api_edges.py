"""The Python API's rough edges of issue 21 item 9: one return type (numpy), one id type (arrays on
`Dataset` and `Recommender`), raw user ids for KGAT folders, `Dataset.to_scipy`, `dir(jnskr)`,
`build_config` with a dict, documented save/load, and progress from `fit` outside Jupyter."""

import logging
import sys

import numpy as np
import pytest

import jnskr
from conftest import DATA, synthetic_dataset, tiny_config
from jnskr.api import Recommender
from jnskr.config import build_config
from jnskr.data.arrays import Interactions
from jnskr.data.readers.kgat import read_kgat
from jnskr.errors import ConfigError, JnskrError
from jnskr.progress import FanOut, NotebookProgress, default_progress


@pytest.fixture(scope="module")
def trained():
    ds = synthetic_dataset()
    return ds, Recommender(tiny_config("jnskr", 2)).fit(ds, progress=False)


def test_score_is_numpy_like_every_other_query(trained):
    ds, rec = trained
    s = rec.score(["u3", "u7"])
    assert isinstance(s, np.ndarray) and s.dtype == np.float32 and s.shape == (2, ds.n_items)
    one = rec.score("u3")
    assert one.shape == (ds.n_items,)
    np.testing.assert_allclose(one, s[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rec.predict(["u7"], ["i5"]), s[1, [5]], rtol=1e-5)


def test_item_ids_is_an_array_on_the_recommender_as_on_the_dataset(trained):
    ds, rec = trained
    assert isinstance(ds.item_ids, np.ndarray) and isinstance(rec.item_ids, np.ndarray)
    assert rec.item_ids.tolist() == ds.item_ids.tolist()
    ids, _ = rec.recommend("u3", k=3)
    assert set(ids.tolist()) <= set(rec.item_ids.tolist())


def test_kgat_folders_give_raw_user_ids(tmp_path):
    assert read_kgat(DATA / "kgat_tiny").user_ids.tolist() == ["alice", "bob", "carol", "dave"]  # user_list.txt
    (tmp_path / "train.txt").write_text("0 0 1\n2 1\n")
    (tmp_path / "test.txt").write_text("0 2\n2 0\n")
    ds = read_kgat(tmp_path)  # no user_list.txt / item_list.txt: the integer ids, as strings
    assert ds.user_ids.tolist() == ["0", "1", "2"] and ds.item_ids.tolist() == ["0", "1", "2"]
    assert ds.raw_user_id(2) == "2" and ds.user_index() == {"0": 0, "1": 1, "2": 2}


def test_to_scipy_is_the_train_split_with_its_confidence_values():
    pytest.importorskip("scipy.sparse")
    ds = synthetic_dataset()
    m = ds.to_scipy()
    assert m.format == "csr" and m.shape == (ds.n_users, ds.n_items) and m.dtype == np.float32
    assert m.nnz == ds.train.nnz and np.all(m.data == 1)
    assert m[3].indices.tolist() == ds.train.row(3).tolist()
    assert ds.to_scipy("test").nnz == ds.test.nnz
    values = np.arange(1, ds.train.nnz + 1, dtype=np.float64)
    ds.train = Interactions(ds.train.indptr, ds.train.indices, ds.n_items, values)
    assert np.array_equal(ds.to_scipy(dtype=np.float64).data, values)
    with pytest.raises(JnskrError, match="'train' or 'test'"):
        ds.to_scipy("valid")


def test_dir_shows_the_lazy_names():
    assert {"Recommender", "Dataset", "load_dataset", "build_config", "Config", "Explanation"} <= set(dir(jnskr))


def test_build_config_takes_a_dict_of_dotted_keys():
    cfg = build_config("default", overrides={"train.epochs": 7, "model": "enmf", "enmf.embed_dim": 16})
    assert (cfg.train.epochs, cfg.model, cfg.enmf.embed_dim) == (7, "enmf", 16)
    assert cfg == build_config("default", overrides=["train.epochs=7", "model=enmf", "enmf.embed_dim=16"])
    with pytest.raises(ConfigError, match="overrides train.epochs=-1"):
        build_config("default", overrides={"train.epochs": -1})
    with pytest.raises(ConfigError, match="dotted keys"):
        build_config("default", overrides={"train..epochs": 1})


def test_save_and_load_are_documented():
    for f in (Recommender.save, Recommender.load):
        assert f.__doc__ and "run folder" in f.__doc__


def test_fit_shows_progress_outside_jupyter_as_the_cli_does(monkeypatch):
    from jnskr.progress import LogProgress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert isinstance(default_progress("auto"), NotebookProgress)  # a terminal: the bar, as the CLI
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    off = default_progress("auto")  # pipes, nohup, CI: lines on the jnskr logger
    assert isinstance(off, FanOut) and any(isinstance(p, LogProgress) for p in off.parts)
    assert isinstance(default_progress(False), FanOut) and all(not isinstance(p, LogProgress)
                                                               for p in default_progress(False).parts)


def test_log_progress_logs_a_line_every_period_between_evaluations(caplog):
    from jnskr.progress import LogProgress

    now = [0.0]
    p = LogProgress(every=30, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="jnskr"):
        p.start(0, 50, 4)
        for b in range(4):
            now[0] += 10
            p.batch(0, 1.0)  # 10, 20, 30 s: one line at 30 s (batch 3/4)
        p.epoch_end({"epoch": 1, "loss": 2.5})
        now[0] += 40
        p.epoch_end({"epoch": 2, "loss": 2.0, "valid": {"recall@20": 0.1}})  # the trainer logs evaluations
        now[0] += 31
        p.epoch_end({"epoch": 3, "loss": 1.5})
    lines = [r.getMessage() for r in caplog.records if r.name == "jnskr"]
    assert lines == ["training: at most 50 epochs", "training: epoch 1/≤50, batch 3/4, 30 s, ≤ 33 min left",
                     "training: epoch 3/≤50 done, loss 1.5, 111 s, ≤ 29 min left"]  # no early-stop rule told
