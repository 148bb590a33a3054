"""Training goldens: per-epoch losses and final metrics of every model, pinned configs.

    python tests/golden/make_golden.py            # compare against the stored goldens (as the test does)
    python tests/golden/make_golden.py --write    # record them anew (only for a change that moves
                                                  # numbers on purpose; say so in the commit)

Each golden run pins its whole configuration (every key, dumped after validation) and the torch
thread count, so a later change of defaults does not move it.  Runs: every model on the tiny
synthetic fixture (`tiny.json`; LightGCN and the default path -- `solver: als` with exact and CG
blocks, then the refit -- added on an Intel Xeon with AVX-512, the rest recorded on AMD EPYC) and, where ../shared/data is present, on kgcn-music
(`kgcn-music.json`).

Float32 sums round differently under another SIMD width, so a golden is per CPU capability
(`torch.backends.cpu.get_cpu_capability()`): `NAME.json` was recorded under AVX2 (AMD EPYC), and
`NAME.<capability>.json` (e.g. `kgcn-music.avx512.json`, recorded on an Intel Xeon with
AVX-512) overlays only the runs whose numbers differ there.  `--write` on an AVX2 machine records
the base file; elsewhere it records the overlay (the runs that differ from the base).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # conftest helpers

LOSS_KEYS = ("loss", "cf", "kg", "bpr", "l2_per_batch")
MODELS = ("jnskr", "enmf", "popularity", "bpr", "jnskr_sampled")
THREADS = 1


def tiny_runs() -> dict[str, dict]:
    from conftest import tiny_config
    from jnskr.config import config_to_dict

    out = {}
    for m in MODELS:
        cfg = config_to_dict(tiny_config(m, 6))
        cfg["train"]["eval_every"] = 3
        out[f"{m}"] = _pin(cfg)
    # the paper protocol (test selection, drop_last) and the paper attention form
    cfg = config_to_dict(tiny_config("jnskr", 4))
    cfg["train"].update(protocol="paper", eval_every=2)
    cfg["jnskr"]["attention"] = "paper"
    out["jnskr-paper"] = _pin(cfg)
    out["lightgcn"] = _pin(_eval3(config_to_dict(tiny_config("lightgcn", 6))))
    # the default path: the exact block solver and the refit (after selection), exact and CG blocks
    for name, model, blocks in (("jnskr-als-refit", "jnskr", "cholesky"), ("jnskr-als-cg-refit", "jnskr", "cg"),
                                ("enmf-als-refit", "enmf", "cholesky")):
        cfg = _eval3(config_to_dict(tiny_config(model, 6)))
        cfg["train"].update(solver="als", refit=True, refit_parallel=False, block_solver=blocks)
        cfg["threads"] = THREADS
        out[name] = cfg
    return out


def _eval3(cfg: dict) -> dict:
    cfg["train"]["eval_every"] = 3
    return cfg


def _pin(cfg: dict) -> dict:
    """Pin what a later change of defaults could move: the solver, refit and the thread count."""
    cfg["train"]["solver"] = "adagrad"
    cfg["train"]["refit"] = False
    cfg["threads"] = THREADS
    return cfg


def kgcn_runs() -> dict[str, dict]:
    from jnskr.config import build_config, config_to_dict

    out = {}
    for m in MODELS:
        over = [f"model={m}", "device=cpu", "train.epochs=4", "train.eval_every=2", "eval.ks=[10,20]"]
        out[m] = _pin(config_to_dict(build_config("kgcn-music", overrides=over)))
    return out


def run_one(cfg_dict: dict, ds) -> dict:
    import torch

    from jnskr.api import Recommender
    from jnskr.config import validate_config

    torch.set_num_threads(THREADS)
    rec = Recommender(validate_config(cfg_dict)).fit(ds)
    epochs = []
    for h in (rec.trainer.history if rec.trainer is not None else []):
        row = {k: h[k] for k in LOSS_KEYS if k in h}
        row["epoch"] = h["epoch"]
        if "valid" in h:
            row["valid"] = h["valid"]
        epochs.append(row)
    m = rec.metrics
    return {"config": cfg_dict, "threads": THREADS, "epochs": epochs, "best_epoch": m["best_epoch"],
            "test": m["test"], "valid": m["valid"]}


def dataset(which: str):
    if which == "tiny":
        from conftest import synthetic_dataset

        return synthetic_dataset()
    from conftest import SHARED_DATA
    from jnskr.data import load_dataset

    return load_dataset(str(SHARED_DATA / "kgcn-music"))


def runs(which: str) -> dict[str, dict]:
    return tiny_runs() if which == "tiny" else kgcn_runs()


def compute(which: str, names=None) -> dict:
    ds = dataset(which)
    return {name: run_one(cfg, ds) for name, cfg in runs(which).items() if names is None or name in names}


BASE_CAPABILITY = "avx2"


def capability() -> str:
    import torch

    return torch.backends.cpu.get_cpu_capability().lower()


def path(which: str, cap: str | None = None) -> Path:
    """The base golden (`cap` None or the base capability) or the overlay of capability `cap`."""
    return HERE / (f"{which}.json" if cap in (None, BASE_CAPABILITY) else f"{which}.{cap}.json")


def load(which: str, cap: str | None = None) -> dict:
    """The golden runs for this machine's CPU capability: the base, overlaid by its file if any."""
    cap = capability() if cap is None else cap
    out = json.loads(path(which).read_text())
    over = path(which, cap)
    if over != path(which) and over.exists():
        out.update(json.loads(over.read_text()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--which", default="tiny,kgcn-music")
    args = ap.parse_args()
    for which in args.which.split(","):
        got = compute(which)
        from compare import compare_runs

        if args.write:
            cap = capability()
            if cap != BASE_CAPABILITY:  # the overlay: only the runs whose numbers differ from the base
                base = json.loads(path(which).read_text())
                got = {k: v for k, v in got.items() if k not in base or compare_runs({k: base[k]}, {k: v})}
            out = path(which, cap)
            out.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
            print(f"wrote {out} ({len(got)} runs)")
        else:
            want = load(which)
            problems = compare_runs(want, got)
            print(f"{which}: " + ("ok" if not problems else "\n".join(problems)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
