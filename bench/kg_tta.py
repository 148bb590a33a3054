"""Time to accuracy of `jnskr kg` against PyKEEN 1.11.1, side by side on this machine.

    nice -n 10 python -m bench.kg_tta --dataset umls --models distmult complex cp
        -> bench/results/kg/tta-umls.json: for every model, OUR preset (jnskr.kg API, 1 thread) and
           then PYKEEN's validation-selected configuration (bench/peers/pykeen/run.py in its venv,
           OMP_NUM_THREADS=1), back to back; test MRR / Hits against training seconds (test ranked
           at every evaluation for the curve, never used to select), time to each one's best
           validation epoch, the ratio, the time we need to reach PyKEEN's best validation MRR,
           `lscpu` model name, `uptime` before and after every run.
    nice -n 10 python -m bench.kg_tta --default-command umls
        -> bench/results/kg/default-command-umls.json: `jnskr kg train --data DIR --model complex
           --out RUN` exactly (DIR = the unpacked folder, preset picked by its name), wall time, MRR
    nice -n 10 python -m bench.kg_tta --large fb15k-237 --model complex --time-limit 1500 [--set k=v]
        -> bench/results/kg/runs-fb15k-237-complex.json: the CLI under /usr/bin/time -v (peak RSS)
    python -m bench.kg_tta --report      (bench.kg_report: markdown tables, docs/img/kg-tta.png)

PyKEEN's configuration: per (dataset, model) the loop (sLCWA or LCWA) whose tune JSON
(bench/results/kg/pykeen/tune-<dataset>-<model>-<loop>.json) has the higher validation MRR, with
that tune's fixed settings and winning parameters.  A missing selection is made first, in the same
invocation, with tune.py (LCWA, --trials 4, --budget 60 CPU-s, --no-final; recorded).  The timed
run gets twice the tuning budget (process CPU seconds) and patience 10 evaluations every 2 epochs,
as in the tuning.  Times are wall seconds of training (evaluation excluded, for both).
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "kg"
PK = REPO / "bench" / "peers" / "pykeen"
PK_PY = REPO / "bench" / ".venv-pykeen" / "bin" / "python"
PK_RESULTS = RESULTS / "pykeen"
PK_NAME = {"nations": "nations", "umls": "umls", "kinship": "kinship", "fb15k-237": "FB15k-237", "wn18rr": "WN18RR"}
SHARED = "file:///work/shared/data/kg"
ENV1 = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")


# ----------------------------------------------------------------------------- ours
def run_ours(dataset: str, model: str) -> dict:
    import torch

    from jnskr.kg.config import build_config, preset_for
    from jnskr.kg.datasets import fetch, load_triples
    from jnskr.kg.trainer import fit

    fetch(dataset, base_url=SHARED)
    data = load_triples(dataset)
    preset = preset_for(data.name)
    cfg = build_config(preset, model=model, overrides=["train.threads=1"])
    up0 = uptime()
    res = fit(cfg, data, trace_test=True)
    m = res.metrics
    curve = [{k: r[k] for k in ("epoch", "train_seconds", "seconds", "valid_mrr", "test_mrr", "test_hits@1",
                                "test_hits@3", "test_hits@10")} for r in res.history if "valid_mrr" in r]
    return {"framework": "jnskr", "model": model, "preset": preset, "solver": cfg.train.solver,
            "config": cfg.model_dump(mode="json"), "torch_threads": 1, "torch": torch.__version__,
            "best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"], "stopped": m["stopped"],
            "train_seconds_to_best": m["train_seconds_to_best"], "train_seconds": round(m["seconds_train"]
                                                                                        - m["seconds_eval"], 3),
            "valid_at_best": m["valid"]["kept"], "test_at_best": m["test"]["kept"],
            "test_at_best_dropped_unseen": m["test"]["dropped"], "curve": curve, "uptime_start": up0,
            "uptime_end": uptime()}


# ----------------------------------------------------------------------------- PyKEEN
def pk_selection(dataset: str, model: str) -> dict | None:
    best = None
    for loop in ("lcwa", "slcwa"):
        f = PK_RESULTS / f"tune-{PK_NAME[dataset]}-{model}-{loop}.json"
        if not f.exists():
            continue
        d = json.loads(f.read_text())
        if not d.get("winner"):
            continue
        sel = {"loop": loop, "file": str(f.relative_to(REPO)), "valid_mrr": d["winner"]["valid_mrr"],
               "params": d["winner"]["params"], "fixed": d["fixed"], "budget": d["budget_train_seconds"],
               "trials_done": len(d["trials"]), "trials_planned": d.get("trials_planned")}
        if best is None or sel["valid_mrr"] > best["valid_mrr"]:
            best = sel
    return best


def pk_tune(dataset: str, model: str, trials: int, budget: float) -> dict:
    cmd = [str(PK_PY), str(PK / "tune.py"), "--dataset", PK_NAME[dataset], "--model", model, "--loop", "lcwa",
           "--trials", str(trials), "--budget", str(budget), "--no-final"]
    t0 = time.perf_counter()
    print("$", shlex.join(cmd), flush=True)
    subprocess.run(cmd, env=ENV1, check=True)
    return {"command": "OMP_NUM_THREADS=1 " + shlex.join(cmd).replace(str(REPO) + "/", ""),
            "wall_seconds": round(time.perf_counter() - t0, 1)}


def pk_argv(sel: dict) -> list[str]:
    hp = {**sel["fixed"], **sel["params"]}
    argv = ["--dim", str(hp["dim"]), "--lr", str(hp["lr"]), "--reg-weight", str(hp["reg_weight"]),
            "--batch-size", str(hp["batch_size"]), "--optimizer", hp.get("optimizer", "adam")]
    if sel["loop"] == "slcwa":
        argv += ["--num-negs", str(hp["num_negs"])]
    else:
        argv += ["--label-smoothing", str(hp["label_smoothing"])]
    if hp.get("inverse") is not None:
        argv.append("--inverse" if hp["inverse"] else "--no-inverse")
    if hp.get("entity_norm") is False:
        argv.append("--no-entity-norm")
    argv += ["--fast-distmult"] * bool(hp.get("fast_distmult")) + ["--fast-complex"] * bool(hp.get("fast_complex"))
    return argv


def run_pykeen(dataset: str, model: str, sel: dict, budget_factor: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(PK_PY), str(PK / "run.py"), "--dataset", PK_NAME[dataset], "--model", model, "--loop", sel["loop"],
               *pk_argv(sel), "--eval-every", "2", "--patience", "10", "--budget", str(budget_factor * sel["budget"]),
               "--budget-clock", "cpu", "--test", "every", "--threads", "1", "--tag", "tta", "--out", tmp, "--quiet"]
        print("$", shlex.join(cmd), flush=True)
        up0 = uptime()
        subprocess.run(cmd, env=ENV1, check=True, stdout=subprocess.DEVNULL)
        res = json.loads(next(Path(tmp).glob("*.json")).read_text())
    both = lambda x: (x or {}).get("both")  # noqa: E731
    curve = [{"epoch": c["epoch"], "train_seconds": c["train_seconds"], "train_cpu_seconds": c["train_cpu_seconds"],
              "valid_mrr": c["valid"]["both"]["mrr"], **{f"test_{k}": c["test"]["both"][k]
                                                         for k in ("mrr", "hits@1", "hits@3", "hits@10")}}
             for c in res["curve"]]
    return {"framework": "pykeen", "version": res["versions"]["pykeen"], "model": model, "loop": sel["loop"],
            "selection": sel, "hyperparameters": res["hyperparameters"],
            "command": "OMP_NUM_THREADS=1 " + shlex.join(cmd).replace(str(REPO) + "/", "").replace(tmp, "TMP"),
            "best_epoch": res["best_epoch"], "epochs_run": res["epochs_run"], "stopped": res["stopped_by"],
            "train_seconds_to_best": res["best_train_seconds"], "train_cpu_seconds_to_best":
            res["best_train_cpu_seconds"], "train_seconds": res["train_seconds"],
            "valid_at_best": both(res["valid_at_best"]), "test_at_best": both(res["test_at_best"]),
            "curve": curve, "uptime_start": up0, "uptime_end": uptime()}


def compare(ours: dict, pk: dict) -> dict:
    target = pk["valid_at_best"]["mrr"]
    reach = next((c["train_seconds"] for c in ours["curve"] if c["valid_mrr"] >= target), None)
    return {"test_mrr": [ours["test_at_best"]["mrr"], pk["test_at_best"]["mrr"]],
            "test_hits@10": [ours["test_at_best"]["hits@10"], pk["test_at_best"]["hits@10"]],
            "seconds_to_best": [ours["train_seconds_to_best"], pk["train_seconds_to_best"]],
            "ratio_seconds_to_best": round(ours["train_seconds_to_best"] / pk["train_seconds_to_best"], 4),
            "ours_seconds_to_pykeen_best_valid": reach,
            "ratio_to_pykeen_best_valid": None if reach is None else round(reach / pk["train_seconds_to_best"], 4)}


def tta(args) -> None:
    out = RESULTS / f"tta-{args.dataset}.json"
    doc = json.loads(out.read_text()) if out.exists() and args.keep else {}
    doc.update({"dataset": args.dataset, "cpu": cpu_name(), "cpu_count": os.cpu_count(), "date": now(),
                "command": "nice -n 10 python -m bench.kg_tta " + shlex.join(sys.argv[1:]), "threads": 1,
                "time": "wall seconds of training, evaluation excluded (both frameworks)",
                "metrics": "filtered, realistic rank, both directions; test ranked at every evaluation for the "
                           "curve, epoch selected on validation MRR",
                "uptime_start": doc.get("uptime_start", uptime())})
    doc.setdefault("models", {})
    doc.setdefault("pykeen_tuning", {})
    for model in args.models:
        ours = run_ours(args.dataset, model)
        entry = {"ours": ours}
        print(f"{args.dataset} {model} ours: test MRR {ours['test_at_best']['mrr']:.4f} "
              f"{ours['train_seconds_to_best']:.1f} s to best", flush=True)
        if model in ("distmult", "complex") and not args.no_pykeen:
            sel = pk_selection(args.dataset, model)
            if sel is None:
                doc["pykeen_tuning"][model] = pk_tune(args.dataset, model, args.tune_trials, args.tune_budget)
                sel = pk_selection(args.dataset, model)
            pk = run_pykeen(args.dataset, model, sel, args.budget_factor)
            entry.update(pykeen=pk, compare=compare(ours, pk))
            print(f"{args.dataset} {model} pykeen ({sel['loop']}): test MRR {pk['test_at_best']['mrr']:.4f} "
                  f"{pk['train_seconds_to_best']:.1f} s to best; ratio {entry['compare']['ratio_seconds_to_best']}",
                  flush=True)
        doc["models"][model] = entry
        doc["uptime_end"] = uptime()
        write(out, doc)
    print_table(doc)
    print("wrote", out)


def print_table(doc: dict) -> None:
    print(f"\n{doc['dataset']} — {doc['cpu']}, 1 thread; test MRR / H@10 at the best validation epoch")
    print(f"{'model':10s} {'ours MRR':>9s} {'H@10':>6s} {'s→best':>8s} | {'PyKEEN MRR':>10s} {'H@10':>6s} "
          f"{'s→best':>8s} | ratio")
    for model, e in doc["models"].items():
        o, p = e["ours"], e.get("pykeen")
        row = f"{model:10s} {o['test_at_best']['mrr']:9.4f} {o['test_at_best']['hits@10']:6.3f} " \
              f"{o['train_seconds_to_best']:8.1f} |"
        if p:
            row += f" {p['test_at_best']['mrr']:10.4f} {p['test_at_best']['hits@10']:6.3f} " \
                   f"{p['train_seconds_to_best']:8.1f} | {e['compare']['ratio_seconds_to_best']:.3f}"
        print(row)


# ----------------------------------------------------------------------------- CLI runs
def time_v(cmd: list[str], env: dict) -> tuple[float, int, str]:
    """Run under /usr/bin/time -v; (wall seconds, peak RSS in KiB, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"failed: {shlex.join(cmd)}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return wall, rss, p.stdout


def _run_summary(run: Path) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    hist = [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines() if ln.strip()]
    return {"best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"], "stopped": m["stopped"],
            "train_seconds_to_best": m.get("train_seconds_to_best"), "seconds_to_best_incl_eval":
            m["seconds_to_best"], "seconds_train_incl_eval": m["seconds_train"], "seconds_final_eval":
            m["seconds_final_eval"], "valid": m["valid"], "test": m["test"],
            "curve": [{k: h.get(k) for k in ("epoch", "train_seconds", "seconds", "valid_mrr")}
                      for h in hist if "valid_mrr" in h]}


def default_command(args) -> None:
    ds = args.default_command
    with tempfile.TemporaryDirectory() as tmp:
        env = {**ENV1, "JNSKR_DATA": tmp}
        subprocess.run([sys.executable, "-c", f"import jnskr.kg; jnskr.kg.fetch({ds!r}, base_url={SHARED!r})"],
                       env=env, check=True)
        folder, run = Path(tmp) / "kg" / ds, Path(tmp) / "run"
        cmd = [sys.executable, "-m", "jnskr", "kg", "train", "--data", str(folder), "--model", "complex",
               "--out", str(run)]
        up0 = uptime()
        wall, rss, stdout = time_v(cmd, env)
        doc = {"dataset": ds, "command": f"jnskr kg train --data $JNSKR_DATA/kg/{ds} --model complex --out RUN",
               "wall_seconds": round(wall, 2), "peak_rss_mb": round(rss / 1024, 1), "cpu": cpu_name(),
               "date": now(), "uptime_start": up0, "uptime_end": uptime(),
               "config": (run / "config.yaml").read_text(), **_run_summary(run), "stdout": stdout}
    write(RESULTS / f"default-command-{ds}.json", doc)
    print(f"{ds}: test MRR {doc['test']['kept']['mrr']:.4f}, valid {doc['valid']['kept']['mrr']:.4f}, "
          f"{wall:.1f} s wall (whole command), peak RSS {rss / 1024:.0f} MB")


def large(args) -> None:
    ds = args.large
    sets = ["train.threads=1", f"train.time_limit={args.time_limit}", *args.set]
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "jnskr", "kg", "train", "--dataset", ds, "--model", args.model,
               *[x for s in sets for x in ("--set", s)], "--out", str(run)]
        print("$", shlex.join(cmd), flush=True)
        up0 = uptime()
        wall, rss, stdout = time_v(cmd, ENV1)
        doc = {"dataset": ds, "model": args.model, "command": shlex.join(cmd).replace(str(run), "RUN")
               .replace(sys.executable, "python"), "wall_seconds": round(wall, 2), "peak_rss_mb": round(rss / 1024, 1),
               "cpu": cpu_name(), "threads": 1, "date": now(), "uptime_start": up0, "uptime_end": uptime(),
               "config": (run / "config.yaml").read_text(), **_run_summary(run), "stdout": stdout}
    write(RESULTS / f"runs-{ds}-{args.model}.json", doc)
    t = doc["test"]["kept"]
    print(f"{ds} {args.model}: test MRR {t['mrr']:.4f} H@10 {t['hits@10']:.4f}; {wall:.0f} s wall, "
          f"peak RSS {rss / 1024:.0f} MB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=list(PK_NAME))
    p.add_argument("--models", nargs="+", default=["distmult", "complex"])
    p.add_argument("--no-pykeen", action="store_true")
    p.add_argument("--keep", action="store_true", help="update the models of an existing tta JSON")
    p.add_argument("--budget-factor", type=float, default=2.0, help="PyKEEN budget = factor x its tuning budget")
    p.add_argument("--tune-trials", type=int, default=4)
    p.add_argument("--tune-budget", type=float, default=60.0)
    p.add_argument("--default-command", choices=["umls", "kinship", "nations"])
    p.add_argument("--large", choices=["fb15k-237", "wn18rr"])
    p.add_argument("--model", default="complex")
    p.add_argument("--time-limit", type=float, default=1500.0)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--report", action="store_true")
    a = p.parse_args()
    if a.report:
        from bench import kg_report

        kg_report.main()
    elif a.default_command:
        default_command(a)
    elif a.large:
        large(a)
    elif a.dataset:
        tta(a)
    else:
        p.error("give --dataset, --default-command, --large or --report")


if __name__ == "__main__":
    main()
