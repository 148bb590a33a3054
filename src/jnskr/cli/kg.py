"""`jnskr kg ...`: train, evaluate and query non-sampling KG embeddings (a typer sub-app).

User errors (`JnskrError`) print one line and exit 2 (``--debug`` on the root command re-raises).
Ctrl-C / SIGTERM during `jnskr kg train` stop it as they stop `jnskr train` (`jnskr.stop`): at the
next batch or exact block, the epoch under way discarded and the run folder's last checkpoint kept;
the root command prints the resume command (`jnskr kg train --resume RUN`) and exits with 128 + the
signal number.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from jnskr.cli.common import STATE, console, err_console, fixed, visible
from jnskr.errors import JnskrError

log = logging.getLogger("jnskr")

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Knowledge-graph embedding without negative sampling: DistMult, ComplEx, CP.")

COLUMNS = (("mrr", "MRR"), ("hits@1", "Hits@1"), ("hits@3", "Hits@3"), ("hits@10", "Hits@10"))
RULE_LABEL = {"kept": "kept", "dropped": "dropped"}


def _user_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except JnskrError as exc:
            if STATE.get("debug"):
                raise
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def metrics_table(metrics: dict, title: str) -> Table:
    """Rows: test and valid under both unseen-entity rules; columns: triples, MRR, Hits@1/3/10."""
    t = Table(title=escape(title), title_justify="left")
    t.add_column("split")
    t.add_column("unseen entities")
    t.add_column("triples", justify="right")
    for _, label in COLUMNS:
        t.add_column(label, justify="right")
    for split in ("test", "valid"):
        for rule in ("kept", "dropped"):
            m = (metrics.get(split) or {}).get(rule)
            if not m:
                continue
            t.add_row(split, RULE_LABEL[rule], f"{m['triples']:,}",
                      *("-" if m.get(k) is None else f"{m[k]:.4f}" for k, _ in COLUMNS))
    return t


def _summary(metrics: dict) -> str:
    parts = [f"best epoch {metrics.get('best_epoch')} of {metrics.get('epochs_run')} ({metrics.get('stopped')})"]
    if metrics.get("seconds_to_best") is not None:
        parts.append(f"{metrics['seconds_to_best']:.1f} s to best, {metrics['seconds_train']:.1f} s training")
    return "; ".join(parts)


def _progress():
    """The progress of `jnskr train`: the rich bar on a terminal, plain log lines elsewhere
    (`jnskr.progress.LogProgress`), none with --quiet."""
    from jnskr.cli.common import show_progress
    from jnskr.cli.progress import RichProgress
    from jnskr.progress import LogProgress

    return RichProgress() if show_progress() else None if STATE.get("quiet") else LogProgress()


@app.command("train")
@_user_errors
def train(
    dataset: Optional[str] = typer.Option(None, "--dataset", help="fb15k-237, wn18rr, nations, kinship, umls."),
    data: Optional[Path] = typer.Option(None, "--data", help="A folder with train.txt, valid.txt, test.txt."),
    model: Optional[str] = typer.Option(None, "--model", help="distmult | complex | cp (default: the preset's)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set dim=200 (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/kg-<dataset>-<model>-<time>)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="A preset of jnskr/kg/presets (default: the one "
                                         "named like the dataset, else default)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted kg run folder from its "
                                          "checkpoint (Ctrl-C / SIGTERM leave one)."),
) -> None:
    """Train a KG embedding, select its epoch on validation, evaluate, save the run folder.

    Ctrl-C (or SIGTERM) stops at the next batch, keeps the last checkpoint and exits with 130 (143);
    `--resume RUN` continues with the same per-epoch figures as an uninterrupted run."""
    from jnskr.kg.config import build_config, preset_for
    from jnskr.kg.run import _check_dest, default_run_dir
    from jnskr.locks import claim, claim_new

    if resume is not None:
        if dataset or data or model or set_ or out or preset:
            raise JnskrError("--resume takes only the run folder: the run keeps its own config and data")
        if not resume.is_dir():
            raise JnskrError(f"{resume}: no such run folder")
        lock = claim(resume, None, doing="resuming")  # one process resumes a run at a time
        try:
            _resume(resume)
        finally:
            lock.release()
        return
    if (dataset is None) == (data is None):
        raise JnskrError("give exactly one of --dataset NAME or --data DIR")
    if data is not None and not data.is_dir():
        raise JnskrError(f"{data}: not a folder (expected train.txt, valid.txt, test.txt inside)")
    name = data.resolve().name if data is not None else dataset
    cfg = build_config(preset or preset_for(name), model=model, overrides=set_)
    if out is not None:  # claimed under a lock at the moment of the check (jnskr.locks)
        lock = claim(out, _check_dest)
    else:
        out, lock = claim_new(default_run_dir(name, cfg.model), _check_dest)
    try:
        _train(cfg, out, data if data is not None else dataset, preset or preset_for(name))
    finally:
        lock.release()


def _train(cfg, run_dir: Path, source, preset: str) -> None:
    from jnskr.kg.datasets import load_triples
    from jnskr.kg.run import run
    from jnskr.runs import RunFolder

    kg = load_triples(source)
    st = kg.stats()
    console.print(escape(f"{kg.name}: {st['entities']:,} entities, {st['relations']:,} relations, "
                         f"{st['train_triples']:,} / {st['valid_triples']:,} / {st['test_triples']:,} triples; "
                         f"{cfg.model}, d={cfg.dim}, solver {cfg.train.solver}, preset {preset}"),
                  highlight=False)
    _report(run(cfg, kg, RunFolder(run_dir), progress=_progress()), kg.name, cfg.model, run_dir)


def _resume(run_dir: Path) -> None:
    from jnskr.kg.run import open_for_resume, run

    cfg, kg, folder, status = open_for_resume(run_dir)
    console.print(escape(f"resuming {run_dir} after epoch {status.get('resumable_from_epoch')}: {kg.name}, "
                         f"{cfg.model}, d={cfg.dim}, solver {cfg.train.solver}"), highlight=False)
    _report(run(cfg, kg, folder, resuming=True, progress=_progress()), kg.name, cfg.model, run_dir)


def _report(result, name: str, model: str, run_dir: Path) -> None:
    console.print(metrics_table(result.metrics, f"{name} {model} (filtered, realistic rank)"))
    console.print(escape(_summary(result.metrics)), highlight=False)
    console.print(escape(f"saved run to {run_dir}"), highlight=False)


@app.command("evaluate")
@_user_errors
def evaluate(
    run: Path = typer.Argument(..., help="A kg run folder."),
    memory_mb: float = typer.Option(512.0, "--memory-mb", help="Cap on one chunk's score matrix."),
) -> None:
    """Re-evaluate a saved run: filtered MRR and Hits@1/3/10 on valid and test, both unseen-entity rules."""
    from jnskr.kg.run import load, load_run_data
    from jnskr.kg.trainer import evaluate_model

    if not math.isfinite(memory_mb) or memory_mb <= 0:
        raise JnskrError(f"--memory-mb {memory_mb}: must be a finite number of megabytes above 0")
    model = load(run)
    data = load_run_data(run)
    metrics = evaluate_model(model, data, ("valid", "test"), memory_mb)
    console.print(metrics_table(metrics, f"{data.name} {model.spec.name} (filtered, realistic rank)"))


@app.command("predict")
@_user_errors
def predict(
    run: Path = typer.Argument(..., help="A kg run folder."),
    head: Optional[str] = typer.Option(None, "--head", help="Head label: rank tails of (head, relation, ?)."),
    relation: str = typer.Option(..., "--relation", help="Relation label."),
    tail: Optional[str] = typer.Option(None, "--tail", help="Tail label: rank heads of (?, relation, tail)."),
    k: int = typer.Option(10, "--k", min=1, help="How many entities to list."),
) -> None:
    """Top-k tails of (head, relation, ?) or heads of (?, relation, tail), raw labels in and out."""
    from jnskr.kg.run import load, load_run_data

    if (head is None) == (tail is None):
        raise JnskrError("give exactly one of --head H (ranks tails) or --tail T (ranks heads)")
    model = load(run)
    rows = model.predict(head=head, relation=relation, tail=tail, k=k)
    data = load_run_data(run)
    r = model.relation_index(relation)
    known = {}
    for split in ("train", "valid", "test"):
        t = data.split(split)
        if head is not None:
            hit = t[(t[:, 0] == model.entity_index(head)) & (t[:, 1] == r)][:, 2]
        else:
            hit = t[(t[:, 2] == model.entity_index(tail)) & (t[:, 1] == r)][:, 0]
        for e in hit.tolist():
            known.setdefault(model.entity_ids[e], split)
    query = f"({head}, {relation}, ?)" if head is not None else f"(?, {relation}, {tail})"
    table = Table(title=visible(f"{query}: top {len(rows)} of {model.n_entities:,}"), title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("tail" if head is not None else "head")
    table.add_column("score", justify="right")
    table.add_column("known in")
    for row in rows:
        table.add_row(str(row["rank"]), visible(row["entity"]), fixed(row["score"]),
                      known.get(row["entity"], ""))
    console.print(table)
