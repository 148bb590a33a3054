"""implicit 0.7.3 (ALS, BPR) as a peer for jnskr's time-to-accuracy (TTA) comparison.

The public API, used by `tune.py`, `run.py` and the lead's side-by-side `bench/tta.py`:

* `to_csr(inter)`: a jnskr `Interactions` as the binary float32 user x item CSR implicit wants.
* `make_model(name, hparams, threads, seed)`: an `implicit.cpu.als.AlternatingLeastSquares` or
  `implicit.cpu.bpr.BayesianPersonalizedRanking` (always the CPU class, never the GPU factory).
* `Scorer`: ``score(users) = user_factors[users] @ item_factors.T`` as float32 torch.
* `make_eval_fn(test, exclude, keys)`: ``eval_fn(scorer) -> {metric: value}`` through
  `jnskr.evaluation.evaluate`, so every figure is computed exactly like jnskr's own.
* `fit_curve(model_name, hparams, train, eval_fn, checkpoints, threads)`: one training run with
  metrics at the checkpoints, cumulative training seconds and scoring seconds kept apart.

How the curve is timed (read from implicit 0.7.3's `implicit/cpu/als.py` and `cpu/bpr.pyx`):
`fit` runs its whole loop in one call and calls ``callback(iteration, elapsed, ...)`` after each
ALS iteration (user solve + item solve) or BPR epoch, *synchronously* in the training thread.
So `fit_curve` makes **one** ``model.fit(csr, callback=cb)`` call with ``iterations = max
checkpoint``, exactly the code path of a plain `fit`, and at a checkpoint the callback evaluates
the current factors.  Training seconds at checkpoint k = wall time since `fit` was entered minus
all evaluation time so far, so they include fit's own set-up (float32 cast, alpha scaling, the
transpose, random init).  Evaluation only reads the factors; it cannot change the training
(`python run.py --check` verifies that the factors after k iterations equal those of a fresh
``fit(iterations=k)``).  Two alternatives were rejected: calling `fit` again with
``iterations=1`` *does* continue from the stored factors (fit only initialises factors that are
None), but repeats the cast/scale/transpose each call, charging set-up k times; refitting from
scratch for every k costs O(k^2) and times k separate set-ups.

Conventions worth knowing:
* ALS confidence: implicit >= 0.5 uses c_ui = the matrix value for observed pairs and 1 for the
  rest (not 1 + alpha r_ui).  With a binary matrix, fit scales it by ``alpha``, so an observed
  pair weighs ``alpha`` and an unobserved one 1 (``alpha=1``: unweighted).
* BPR: both factor matrices have ``factors + 1`` columns; the last user column is fixed at 1 and
  the last item column is the item bias, so the plain dot product includes the bias.  Negatives
  are drawn as the item of a random *interaction* (popularity-proportional, not uniform); with
  ``verify_negative_samples`` a sampled negative the user liked is skipped.
* Threads: ``num_threads`` is implicit's OpenMP thread count.  implicit warns unless BLAS runs
  single-threaded (its CG solver calls BLAS inside OpenMP threads), so the fit runs under
  ``threadpoolctl.threadpool_limits(blas_threads, "blas")``, default 1, as implicit recommends.
  BPR with more than 1 thread is Hogwild (not reproducible); with 1 thread it is seeded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import implicit.cpu.als  # imported here, not in `make_model`: this loads scipy's OpenBLAS, which the
import implicit.cpu.bpr  # threadpool_limits around fit/construction must find already loaded
import numpy as np
import scipy.sparse as sp
import torch

IMPLICIT_VERSION = "0.7.3"
MODELS = ("als", "bpr")
#: hyper-parameters each model accepts (``iterations`` is the maximum; the curve picks the best)
HPARAMS = {
    "als": ("factors", "regularization", "alpha", "iterations", "use_cg", "cg_steps"),
    "bpr": ("factors", "learning_rate", "regularization", "iterations", "verify_negative_samples"),
}
DEFAULT_KEYS = ("recall@20", "ndcg@20")


def to_csr(inter) -> sp.csr_matrix:
    """A jnskr `Interactions` (sorted, duplicate-free rows) as a float32 0/1 CSR, users x items."""
    return sp.csr_matrix(
        (np.ones(inter.nnz, dtype=np.float32), np.asarray(inter.indices, dtype=np.int32),
         np.asarray(inter.indptr, dtype=np.int32)),
        shape=(inter.n_users, inter.n_items),
    )


def make_model(model_name: str, hparams: dict[str, Any], threads: int = 1, seed: int = 2020):
    """The implicit CPU model for `model_name` ("als"/"bpr") with `hparams` (unknown keys are errors)."""
    if model_name not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model_name!r}")
    unknown = set(hparams) - set(HPARAMS[model_name])
    if unknown:
        raise ValueError(f"unknown {model_name} hyper-parameters: {sorted(unknown)}")
    hp = dict(hparams)
    if model_name == "als":
        cg_steps = hp.pop("cg_steps", None)
        model = implicit.cpu.als.AlternatingLeastSquares(**hp, num_threads=threads, random_state=seed)
        if cg_steps is not None:
            model.cg_steps = int(cg_steps)
        return model
    return implicit.cpu.bpr.BayesianPersonalizedRanking(**hp, num_threads=threads, random_state=seed)


class Scorer:
    """jnskr `Scorer` over implicit factors: ``score(users) = U[users] @ V.T`` (float32 torch).

    `torch.from_numpy` shares memory with the model's arrays (no copy), so a scorer built during
    training sees the current factors; `snapshot()` gives an independent copy.
    """

    device = "cpu"

    def __init__(self, user_factors: np.ndarray, item_factors: np.ndarray):
        self.user_factors = torch.from_numpy(np.ascontiguousarray(user_factors, dtype=np.float32))
        self.item_factors = torch.from_numpy(np.ascontiguousarray(item_factors, dtype=np.float32))
        if self.user_factors.shape[1] != self.item_factors.shape[1]:
            raise ValueError("user and item factors differ in width")

    @classmethod
    def from_model(cls, model) -> "Scorer":
        """Wrap a fitted (or fitting) implicit CPU model; for BPR the bias column is included."""
        return cls(model.user_factors, model.item_factors)

    @property
    def n_items(self) -> int:
        return self.item_factors.shape[0]

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Float32 [b, n_items] scores of the int64 [b] users (a fresh tensor, as evaluate wants)."""
        return self.user_factors[users.cpu()] @ self.item_factors.T

    def snapshot(self) -> "Scorer":
        return Scorer(self.user_factors.numpy().copy(), self.item_factors.numpy().copy())


def make_eval_fn(test, exclude, keys: Sequence[str] | None = DEFAULT_KEYS, ks=(10, 20, 40),
                 k_max: int = 100) -> Callable[[Scorer], dict[str, float]]:
    """``eval_fn(scorer) -> {key: value}`` via jnskr's evaluator; ``keys=None`` keeps every metric.

    Validation: ``make_eval_fn(valid, [train_part])``; test: ``make_eval_fn(ds.test, [ds.train])``.
    """
    from jnskr.evaluation import evaluate

    exclude = list(exclude) if isinstance(exclude, (list, tuple)) else [exclude]

    def eval_fn(scorer: Scorer) -> dict[str, float]:
        res = evaluate(scorer, test, exclude, ks=ks, k_max=k_max)
        return {k: float(v) for k, v in res.metrics.items() if keys is None or k in keys}

    return eval_fn


class _Stop(Exception):
    """Raised by the `fit_curve` callback to end a tuning run early."""


@dataclass
class Point:
    """One checkpoint of a curve."""

    iteration: int  # ALS iterations / BPR epochs done (1-based)
    train_seconds: float  # cumulative training wall seconds since fit was entered, scoring excluded
    eval_seconds: float  # seconds this checkpoint's eval_fn took (not in train_seconds)
    implicit_seconds: float  # sum of implicit's own per-iteration `elapsed` (solver only)
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "train_seconds": round(self.train_seconds, 6),
                "eval_seconds": round(self.eval_seconds, 6), "implicit_seconds": round(self.implicit_seconds, 6),
                "metrics": {k: round(v, 6) for k, v in self.metrics.items()}}


@dataclass
class Curve:
    """A time-to-accuracy curve and the model it ends with."""

    model_name: str
    hparams: dict[str, Any]
    threads: int
    blas_threads: int
    seed: int
    points: list[Point]
    fit_seconds: float  # the whole fit call, scoring excluded
    prep_seconds: float  # Interactions -> scipy CSR (outside fit)
    model: Any = field(repr=False, default=None)
    stopped_early: bool = False  # `patience` ran out before the last checkpoint

    def best(self, key: str = "recall@20") -> Point:
        """The checkpoint with the highest `key`; ties go to the earlier (cheaper) one."""
        return max(self.points, key=lambda p: (p.metrics[key], -p.iteration))

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model_name, "hparams": self.hparams, "threads": self.threads,
                "blas_threads": self.blas_threads, "seed": self.seed, "fit_seconds": round(self.fit_seconds, 6),
                "prep_seconds": round(self.prep_seconds, 6), "stopped_early": self.stopped_early,
                "points": [p.to_dict() for p in self.points]}


def fit_curve(model_name: str, hparams: dict[str, Any], train, eval_fn: Callable[[Scorer], Any],
              checkpoints: Iterable[int] | None = None, threads: int = 1, *, seed: int = 2020,
              blas_threads: int = 1, torch_threads: int | None = None, patience: int | None = None,
              key: str = "recall@20") -> Curve:
    """Train implicit `model_name` on `train` once, evaluating at the `checkpoints`.

    Args:
        model_name: "als" or "bpr".
        hparams: see `HPARAMS`; ``iterations`` is only used when `checkpoints` is None.
        train: a jnskr `Interactions` (users x items; every entry a positive).
        eval_fn: ``eval_fn(scorer)`` -> dict of metrics or an `EvalResult` (e.g. `make_eval_fn`).
        checkpoints: 1-based iteration (ALS) / epoch (BPR) numbers to evaluate at; the run trains
            ``max(checkpoints)`` iterations.  None: every iteration up to ``hparams["iterations"]``.
        threads: implicit's ``num_threads`` (OpenMP) for fitting.
        seed: implicit's ``random_state``.
        blas_threads: BLAS threads during the fit (implicit recommends 1).
        torch_threads: torch threads for scoring (default `threads`); restored afterwards.
        patience: stop (for tuning) after this many checkpoints in a row without a new best
            `key`; the callback raises `_Stop` out of `fit`, whose factors stay as they are.

    Returns:
        a `Curve`: a `Point` per checkpoint (cumulative training seconds, scoring seconds,
        metrics), the total fit seconds and the fitted model.
    """
    from threadpoolctl import threadpool_limits

    cps = sorted({int(c) for c in checkpoints}) if checkpoints is not None else \
        list(range(1, int(hparams["iterations"]) + 1))
    if not cps or cps[0] < 1:
        raise ValueError("checkpoints must be positive iteration numbers")
    hp = {**hparams, "iterations": cps[-1]}
    todo = set(cps)

    t = time.perf_counter()
    csr = to_csr(train)
    prep = time.perf_counter() - t
    with threadpool_limits(blas_threads, "blas"):  # constructing checks BLAS threads (and warns)
        model = make_model(model_name, hp, threads, seed)

    points: list[Point] = []
    state = {"t0": 0.0, "eval": 0.0, "implicit": 0.0, "best": -np.inf, "since": 0}

    def callback(iteration: int, elapsed: float, *_rest) -> None:
        now = time.perf_counter()
        state["implicit"] += elapsed
        k = iteration + 1
        if k not in todo:
            return
        train_s = now - state["t0"] - state["eval"]
        e0 = time.perf_counter()
        res = eval_fn(Scorer.from_model(model))
        metrics = dict(res.metrics) if hasattr(res, "metrics") else dict(res)
        e = time.perf_counter() - e0
        state["eval"] += e
        points.append(Point(k, train_s, e, state["implicit"], {m: float(v) for m, v in metrics.items()}))
        if patience is not None:
            if metrics[key] > state["best"]:
                state["best"], state["since"] = metrics[key], 0
            else:
                state["since"] += 1
                if state["since"] >= patience:
                    raise _Stop

    old_torch = torch.get_num_threads()
    torch.set_num_threads(torch_threads or threads)
    try:
        with threadpool_limits(blas_threads, "blas"):
            state["t0"] = time.perf_counter()
            try:
                model.fit(csr, show_progress=False, callback=callback)
                stopped = False
            except _Stop:
                stopped = True
            fit_s = time.perf_counter() - state["t0"] - state["eval"]
    finally:
        torch.set_num_threads(old_torch)
    return Curve(model_name, dict(hparams), threads, blas_threads, seed, points, fit_s, prep, model, stopped)


def fit(model_name: str, hparams: dict[str, Any], train, threads: int = 1, *, seed: int = 2020,
        blas_threads: int = 1):
    """A plain fit (no callback, no evaluation), as a user would run it; returns the model."""
    from threadpoolctl import threadpool_limits

    csr = to_csr(train)
    with threadpool_limits(blas_threads, "blas"):
        model = make_model(model_name, hparams, threads, seed)
        model.fit(csr, show_progress=False)
    return model


def environment() -> dict[str, Any]:
    """implicit/BLAS/OpenMP facts for result files (threadpoolctl, OPENBLAS_CORETYPE, CPU, load)."""
    import os
    import platform
    import subprocess

    import implicit
    import threadpoolctl

    cpu = None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        cpu = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), None)
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        uptime = None
    import jnskr

    src = Path(jnskr.__file__).resolve().parents[2]
    stamp = src / "COMMIT"  # a `git archive` snapshot of the tree (see README)
    if stamp.is_file():
        jnskr_commit = stamp.read_text().strip() + " (snapshot)"
    else:
        try:
            jnskr_commit = subprocess.run(["git", "-C", str(src), "describe", "--always", "--dirty"],
                                          capture_output=True, text=True, timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            jnskr_commit = None
    pools = [{k: v for k, v in p.items() if k in ("internal_api", "prefix", "version", "architecture", "num_threads",
                                                  "threading_layer")} | {"file": p["filepath"]}
             for p in threadpoolctl.threadpool_info()]
    return {
        "implicit": implicit.__version__, "numpy": np.__version__, "scipy": __import__("scipy").__version__,
        "jnskr": str(Path(jnskr.__file__).parent), "jnskr_commit": jnskr_commit,
        "torch": torch.__version__, "threadpoolctl": threadpoolctl.__version__, "python": platform.python_version(),
        "cpu_model": cpu, "cpu_count": os.cpu_count(), "uptime": uptime, "load_average": list(os.getloadavg()),
        "threadpools": pools,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                               "OPENBLAS_CORETYPE", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
