"""Shared fixtures: where the real datasets are, a private data cache, tiny synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# Hypothesis: the same examples on every run by default, so that CI is reproducible (a fuzz failure
# is a bug to fix, not a coin toss); HYPOTHESIS_PROFILE=explore draws fresh random examples to hunt
# for new failures (each one found becomes a regression test).
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", derandomize=True, database=None)
    _hyp_settings.register_profile("explore", derandomize=False)
    _hyp_settings.load_profile(__import__("os").environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a test extra
    pass

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

#: fixture files whose format name is that of a dataset file are stored under another name
#: (tests/data/README.md): stored name -> the name the readers look for
STORED_AS = {"facts.fixture": "kg_final.txt", "facts-gz.fixture": "kg_final.txt.gz",
             "links-npz.fixture": "kg_feat.npz"}


def _materialise_fixtures() -> Path:
    """tests/data copied to a private folder with every stored fixture under its format name;
    removed at exit.  -> the copy (the same tree the tests name, e.g. DATA / "kgat_tiny")."""
    import atexit
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="jnskr-test-data-"))
    atexit.register(shutil.rmtree, root, True)
    data = root / "data"
    shutil.copytree(Path(__file__).resolve().parent / "data", data, symlinks=True)
    for stored, name in STORED_AS.items():
        for f in data.rglob(stored):
            f.rename(f.with_name(name))
    return data


#: the fixture tree, ready to read (use this, not tests/data, for data-format fixtures)
DATA = _materialise_fixtures()


def shared_dataset(name: str) -> Path:
    """Path of a dataset in ../shared/data (a folder beside the checkout that holds the project's
    real datasets), or skip the test when it is absent.  The reason names the folder relative to
    the checkout: a user without it sees where it would be, not a path of someone else's machine."""
    p = SHARED_DATA / name
    if not p.is_dir():
        pytest.skip(f"../shared/data/{name} is not available (real data; the test runs where it is)")
    return p


@pytest.fixture(autouse=True, scope="session")
def _private_data_cache(tmp_path_factory):
    """Tests never read or write the user's data cache."""
    import os

    d = tmp_path_factory.mktemp("jnskr_data")
    old = os.environ.get("JNSKR_DATA")
    os.environ["JNSKR_DATA"] = str(d)
    yield d
    if old is None:
        os.environ.pop("JNSKR_DATA", None)
    else:
        os.environ["JNSKR_DATA"] = old


def synthetic_dataset(n_users=60, n_items=40, n_entities=70, n_relations=4, seed=0, name="synthetic"):
    """A small dataset with real structure: users like items of 'their' latent cluster, and
    items of a cluster share KG tails, so the KG carries signal."""
    from jnskr.data.dataset import Dataset, Interactions, KnowledgeGraph

    rng = np.random.default_rng(seed)
    k = 4
    uc = rng.integers(0, k, n_users)
    ic = np.arange(n_items) % k
    users, items = [], []
    for u in range(n_users):
        pool = np.flatnonzero(ic == uc[u])
        chosen = rng.choice(pool, size=min(len(pool), 6), replace=False)
        noise = rng.choice(n_items, size=1)
        for i in np.concatenate([chosen, noise]):
            users.append(u)
            items.append(int(i))
    users, items = np.array(users), np.array(items)
    perm = rng.permutation(len(users))
    test_mask = np.zeros(len(users), bool)
    test_mask[perm[: len(users) // 5]] = True
    train = Interactions.from_pairs(users[~test_mask], items[~test_mask], n_users, n_items)
    test = Interactions.from_pairs(users[test_mask], items[test_mask], n_users, n_items)
    heads, rels, tails = [], [], []
    for i in range(n_items):
        for r in range(2):
            heads.append(i)
            rels.append(r)
            tails.append(n_items + ic[i] * 3 + r + rng.integers(0, 2))
        heads.append(i)
        rels.append(2 + rng.integers(0, 2))
        tails.append(n_items + 12 + rng.integers(0, n_entities - n_items - 12))
    kg = KnowledgeGraph(np.array(heads), np.array(rels), np.array(tails), n_entities, n_relations)
    return Dataset(name=name, n_users=n_users, n_items=n_items, train=train, test=test, kg=kg,
                   user_ids=np.array([f"u{u}" for u in range(n_users)]),
                   item_ids=np.array([f"i{i}" for i in range(n_items)]),
                   item_names=np.array([f"Item {i}" for i in range(n_items)]))


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """Each test that takes `device` runs on the CPU and, under the `gpu` marker, on CUDA
    (skipped where there is none): `pytest -m gpu` on a GPU machine runs the kernels there."""
    import torch

    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    return torch.device(request.param)


@pytest.fixture
def synth():
    return synthetic_dataset()


@pytest.fixture(autouse=True)
def _reset_jnskr_logger():
    """The CLI configures the "jnskr" logger; undo it so caplog works in every test."""
    import logging

    yield
    logger = logging.getLogger("jnskr")
    logger.handlers[:] = [h for h in logger.handlers if isinstance(h, logging.NullHandler)]
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def fit_runs(root, models=("jnskr", "enmf")) -> dict:
    """Train `models` on `synthetic_dataset()` with `tiny_config` (ENMF 3 epochs, others 5) into
    run folders under `root`.  -> {"ds": dataset, model: run folder, ...}."""
    from jnskr.api import Recommender

    ds = synthetic_dataset()
    out = {"ds": ds}
    for m in models:
        Recommender(tiny_config(m, 3 if m == "enmf" else 5)).fit(ds, run_dir=root / m)
        out[m] = root / m
    return out


def tiny_config(model: str = "jnskr", epochs: int = 5):
    """A fast config for the synthetic dataset (small embeddings, small batches)."""
    from jnskr.config import build_config

    return build_config("default", overrides=[
        f"model={model}", "device=cpu", f"train.epochs={epochs}", "train.batch_size=16", "eval.ks=[5,10]",
        "jnskr.embed_dim=16", "enmf.embed_dim=16", "jnskr.c0=20", "jnskr.c1=20"])
