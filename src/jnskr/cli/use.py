"""`jnskr recommend`, `jnskr similar`, `jnskr export-embeddings`, `jnskr serve`: using a run.

Plain functions; `jnskr.cli.main` registers them as commands.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from jnskr.cli.common import CHECKPOINT, console, fixed, plain, visible
from jnskr.errors import JnskrError

log = logging.getLogger("jnskr")

#: rows explained per chunk (bounds the float64 fact temporaries)
EXPLAIN_CHUNK = 2048


OVERWRITE = typer.Option(False, "--overwrite", help="Let --output replace an existing file that is not an "
                                                    "earlier jnskr export.")


def _check_export(output: Path, overwrite: bool, inputs) -> None:
    """Before any work: --output never replaces an input, or a file that is not an earlier export of
    ours (a CSV/JSON Lines/Parquet file holding our user,item,rank columns), unless --overwrite."""
    from jnskr.export import is_our_export
    from jnskr.outputs import check_file_out

    if str(output) != "-":
        check_file_out(output, is_our_export, "--output", overwrite, inputs)


def _threads(n: int | None, engine) -> None:
    from jnskr.threads import set_threads

    set_threads(n, engine.rec.train_seen.nnz, engine.ids.n_users + engine.n_catalog)


def _fmt_fact(f: dict) -> str:
    ent = f["entity"] + (f" ({f['entity_name']})" if f.get("entity_name") else "")
    return visible(f"{f['relation']} -> {ent}  a={f['alpha']:.3f}  {fixed(f['contribution'], '+.4f')}")


def _explain_rows(engine, users_p, items: np.ndarray, top: int) -> list[dict]:
    import torch

    out: list[dict] = []
    for lo in range(0, len(items), EXPLAIN_CHUNK):
        hi = min(lo + EXPLAIN_CHUNK, len(items))
        p = users_p[lo:hi] if isinstance(users_p, torch.Tensor) else users_p(lo, hi)
        out.extend(engine.explain(p, items[lo:hi], top))
    return out


def _print_table(engine, rows: list[dict], title: str, explanations: list[dict] | None) -> None:
    t = Table(title=visible(title), title_justify="left")
    t.add_column("rank", justify="right")
    t.add_column("item")
    has_names = engine.item_names is not None
    if has_names:
        t.add_column("name")
    t.add_column("score", justify="right")
    if explanations is not None:
        t.add_column("base", justify="right")
        t.add_column("kg", justify="right")
        t.add_column("facts", justify="right")
    for k, r in enumerate(rows):
        cells = [str(r["rank"]), visible(r["item"]), *([visible(r.get("name") or "")] if has_names else []),
                 f"{fixed(r['score'], '.4f')}"]
        if explanations is not None:
            e = explanations[k]
            cells += [f"{fixed(e['base'], '+.4f')}", f"{fixed(e['kg'], '+.4f')}", str(e["n_facts"])]
        t.add_row(*cells)
    console.print(t)
    if explanations is None:
        return
    console.print("score = base + kg exactly: base = h.(p_u*e_v); kg = sum over the item's KG facts (r, t) of "
                  "a_v(r,t) * h.(p_u*x_t), listed by |contribution|", highlight=False)
    for r, e in zip(rows, explanations):
        name = visible(f" {r['name']}") if r.get("name") else ""
        console.print(f"#{r['rank']} {visible(r['item'])}{name}: {fixed(e['score'], '.4f')} = "
                      f"base {fixed(e['base'], '+.4f')} + kg {fixed(e['kg'], '+.4f')}",
                      highlight=False, soft_wrap=True)
        for f in e["facts"]:
            console.print(f"    {_fmt_fact(f)}", highlight=False, soft_wrap=True)
        if len(e["facts"]) < e["n_facts"]:
            console.print(f"    ... {e['n_facts'] - len(e['facts'])} more facts: {fixed(e['rest'], '+.4f')}",
                          highlight=False)
    if not engine.names.any_named:
        console.print("entities are shown by their raw ids: the dataset has no entity names", highlight=False)
    elif any(not f.get("entity_name") for e in explanations for f in e["facts"]):  # ml-100k: 96 of 33,126 named
        console.print("entities without a name in the dataset are shown by their raw ids", highlight=False)


def recommend(
    run_dir: Path = typer.Argument(..., help="A run folder written by `jnskr train`."),
    user: Optional[str] = typer.Option(None, "--user", help="Raw user id (as in the dataset)."),
    all_users: bool = typer.Option(False, "--all", help="Every user of the run (needs --output)."),
    users_file: Optional[Path] = typer.Option(None, "--users", help="File of raw user ids, one a line."),
    history: Optional[Path] = typer.Option(None, "--history",
                                           help="A new user: file of raw item ids they liked, one a line."),
    history_items: Optional[str] = typer.Option(None, "--history-items",
                                                help="A new user: comma-separated raw item ids."),
    items_file: Optional[Path] = typer.Option(None, "--items",
                                              help="Restrict the candidates to these raw item ids (one a line)."),
    new_items: Optional[Path] = typer.Option(None, "--new-items",
                                             help="Cold-start items: tab-separated `item relation entity` triples."),
    k: int = typer.Option(20, "--k", min=1, help="How many items per user."),
    keep_seen: bool = typer.Option(False, "--keep-seen", help="Do not exclude training (or history) items."),
    explain: bool = typer.Option(False, "--explain", help="Show the KG facts behind each score (JNSKR with a KG)."),
    facts: int = typer.Option(5, "--facts", min=1, help="KG facts shown per item with --explain."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write .csv, .jsonl or .parquet (- : JSON Lines on stdout)."),
    raw_csv: bool = typer.Option(False, "--raw-csv",
                                 help="CSV cells exactly as the ids and names are (by default a text cell "
                                      "starting with = + - @ gets a leading ' so spreadsheets do not run it)."),
    overwrite: bool = OVERWRITE,
    batch_size: int = typer.Option(1024, "--batch-size", min=1, help="Users scored per batch."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda (default: the run's)."),
    ridge: Optional[float] = typer.Option(None, "--ridge", min=0.0,
                                          help="Fold-in ridge, relative to the Gram diagonal (default 0.01)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=1024,
                                          help="torch threads (default: one for small data, else every core up to 8)."),
    checkpoint: str = CHECKPOINT,
) -> None:
    """Top-k recommendations: one user, many users or all of them, or a new user from a history."""
    from jnskr.coldstart import DEFAULT_RIDGE
    from jnskr.export import RecommendationWriter, output_format, read_id_file
    from jnskr.serve.engine import Engine

    modes = [m for m, on in (("--user", user is not None), ("--all", all_users), ("--users", users_file is not None),
                             ("--history", history is not None), ("--history-items", history_items is not None)) if on]
    if len(modes) != 1:
        raise JnskrError("give exactly one of --user, --all, --users, --history, --history-items"
                         + (f" (got {', '.join(modes)})" if modes else ""))
    many = modes[0] in ("--all", "--users")
    if many and output is None:
        raise JnskrError(f"{modes[0]} needs --output FILE (.csv, .jsonl or .parquet; - for JSON Lines on stdout)")
    if output is not None:
        output_format(output)  # fail fast on a bad suffix or a missing pyarrow
        _check_export(output, overwrite, [("--users file", users_file), ("--history file", history)])
    engine = Engine.load(run_dir, device=device, new_items_path=new_items,
                         ridge=DEFAULT_RIDGE if ridge is None else ridge, checkpoint=checkpoint)
    _threads(threads, engine)
    if explain:
        engine.fact_table()  # a clear error for runs without a KG
    cand = None
    if items_file is not None:
        cand = engine.candidates_mask(engine.item_indices(read_id_file(items_file, "item"), f"{items_file}: "))

    if modes[0] in ("--history", "--history-items"):
        raws = read_id_file(history, "item") if history is not None else \
            [s.strip() for s in history_items.split(",") if s.strip()]
        if not raws:
            raise JnskrError("--history-items: no item ids")
        where = f"{history}: " if history is not None else "--history-items: "
        hist = engine.item_indices(raws, where)
        p, top = engine.recommend_history(hist, k=k, exclude_history=not keep_seen, candidates=cand)
        label = "new-user"
        rows = engine.rows(top, [label])
        exps = None
        if explain:
            exps = engine.explain(p.unsqueeze(0).expand(len(rows), -1), top[0][0][: len(rows)], facts)
        title = f"top {k} for a new user (fold-in from {len(hist)} items)"
        users_raw = [label]
    else:
        if modes[0] == "--user":
            users_raw = [user]
        elif modes[0] == "--all":
            users_raw = list(engine.user_ids)
        else:
            users_raw = read_id_file(users_file, "user")
        uidx = engine.user_indices(users_raw, f"{users_file}: " if users_file is not None else "")
        top = engine.recommend_users(uidx, k=k, exclude_seen=not keep_seen, candidates=cand, batch_size=batch_size)
        rows = engine.rows(top, users_raw)
        exps = None
        if explain:
            r_idx, c_idx = np.nonzero(top[0] >= 0)
            pair_users = uidx[r_idx]
            pair_items = top[0][r_idx, c_idx]
            exps = _explain_rows(engine, lambda lo, hi: engine.user_vectors(pair_users[lo:hi]), pair_items, facts)
        title = f"top {k} for user {user}"

    if output is None:
        _print_table(engine, rows, title, exps)
        return
    writer = RecommendationWriter(output, with_names=engine.item_names is not None, with_explanations=exps is not None,
                                  raw_csv=raw_csv)
    for k_, r in enumerate(rows):
        r = dict(r)
        if "name" in r:
            r["item_name"] = r.pop("name")
        if exps is not None:
            e = exps[k_]
            r.update(base=e["base"], kg=e["kg"], facts=e["facts"])
        writer.add([r])
    n = writer.close()
    if str(output) != "-":
        console.print(f"wrote {n:,} rows for {len(users_raw):,} user(s) to {plain(output)}", highlight=False)


def similar(
    run_dir: Path = typer.Argument(..., help="A run folder written by `jnskr train`."),
    item: str = typer.Option(..., "--item", help="Raw item id."),
    k: int = typer.Option(20, "--k", min=1, help="How many items."),
    new_items: Optional[Path] = typer.Option(None, "--new-items", help="Cold-start items (tab-separated triples)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write .csv, .jsonl or .parquet."),
    raw_csv: bool = typer.Option(False, "--raw-csv",
                                 help="CSV cells exactly as the ids and names are (by default a text cell "
                                      "starting with = + - @ gets a leading ' so spreadsheets do not run it)."),
    overwrite: bool = OVERWRITE,
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda (default: the run's)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=1024,
                                          help="torch threads (default: one for small data, else every core up to 8)."),
    checkpoint: str = CHECKPOINT,
) -> None:
    """Nearest items by cosine similarity of the item vectors q_v (= e_v + m_v for JNSKR)."""
    from jnskr.export import RecommendationWriter, output_format
    from jnskr.serve.engine import Engine

    if output is not None:
        output_format(output)
        _check_export(output, overwrite, [("--new-items file", new_items)])
    engine = Engine.load(run_dir, device=device, new_items_path=new_items, checkpoint=checkpoint)
    _threads(threads, engine)
    idx = engine.item_index(item)
    top = engine.similar(idx, k)
    rows = engine.rows(top)
    if output is not None:
        w = RecommendationWriter(output, with_names=engine.item_names is not None, with_explanations=False,
                                 raw_csv=raw_csv)
        w.columns = ["item", "rank", "score"] + (["item_name"] if engine.item_names is not None else [])
        w.add([{**{kk: v for kk, v in r.items() if kk != "name"}, "item_name": r.get("name")} for r in rows])
        console.print(f"wrote {w.close():,} rows to {plain(output)}", highlight=False)
        return
    name = engine.item_name(idx)
    t = Table(title=visible(f"top {k} items similar to {item}" + (f" ({name})" if name else "")
                          + " -- cosine similarity of q vectors"), title_justify="left")
    t.add_column("rank", justify="right")
    t.add_column("item")
    if engine.item_names is not None:
        t.add_column("name")
    t.add_column("cosine", justify="right")
    for r in rows:
        t.add_row(str(r["rank"]), visible(r["item"]), *([visible(r.get("name") or "")] if engine.item_names is not None
                                                        else []),
                  f"{fixed(r['score'], '.4f')}")
    console.print(t)


def export_embeddings(
    run_dir: Path = typer.Argument(..., help="A run folder written by `jnskr train`."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write .npy + .tsv files into."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=1024,
                                          help="torch threads (default: one for small data, else every core up to 8)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace files of the same names in --output that "
                                   "an earlier export did not write."),
    checkpoint: str = CHECKPOINT,
) -> None:
    """Write users (p), items (q, e), entities (x), relations (z) and h as .npy with .tsv ids."""
    from jnskr.api import Recommender
    from jnskr.export import export_embeddings as do_export

    from jnskr.threads import set_threads

    set_threads(threads or 1)
    rec = Recommender.load(run_dir, device="cpu", checkpoint=checkpoint)
    manifest = do_export(rec, output, overwrite)
    t = Table(title=plain(f"embeddings of {run_dir} in {output}"), title_justify="left")
    t.add_column("file")
    t.add_column("shape", justify="right")
    t.add_column("ids")
    t.add_column("what")
    for name, info in manifest["files"].items():
        t.add_row(name, " x ".join(str(s) for s in info["shape"]), info.get("ids", ""), info["what"])
    console.print(t)


def serve(
    run_dir: Path = typer.Argument(..., help="A run folder written by `jnskr train`."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Interface to listen on (beyond loopback: anyone who reaches it reads every "
                                  "user's history; set a token)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    new_items: Optional[Path] = typer.Option(None, "--new-items", help="Cold-start items (tab-separated triples)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda (default: the run's)."),
    threads: int = typer.Option(1, "--threads", min=1, max=1024, help="torch threads (1 is fastest for single queries)."),
    ridge: Optional[float] = typer.Option(None, "--ridge", min=0.0, help="Fold-in ridge for POST /recommend."),
    allow_host: list[str] = typer.Option([], "--allow-host",
                                         help="A Host name to answer for, besides loopback names, IP addresses and "
                                              "--host (repeatable; * answers any, which undoes the DNS-rebinding guard)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="JNSKR_TOKEN", show_envvar=True,
                                        help="Every request but the page needs 'Authorization: Bearer TOKEN' "
                                             "(prefer the environment variable: command lines are visible to "
                                             "other users of the machine)."),
    checkpoint: str = CHECKPOINT,
) -> None:
    """HTTP service: GET /recommend, /similar, /health, /metadata; POST /recommend (history)."""
    from jnskr.serve.app import serve_forever

    serve_forever(run_dir, host=host, port=port, new_items=new_items, device=device, threads=threads, ridge=ridge,
                  allowed_hosts=allow_host, token=token, checkpoint=checkpoint)
