"""Writing recommendations and embeddings to files.

Recommendations (`write_recommendations`): one row per (user, recommended item) with columns
``user, item, rank, score[, item_name]`` -- raw ids as in the dataset, ranks from 1, rows
grouped by user in the order asked.  With explanations, rows also carry ``base`` (hᵀ(p∘e_v)),
``kg`` (Σ fact contributions; score = base + kg) and ``facts`` (the top facts: a JSON list in
CSV/Parquet, a nested list in JSON Lines).  The format follows the suffix:

* ``.csv``: RFC 4180 via the csv module;
* ``.jsonl``: one JSON object a line (``-`` writes JSON Lines to stdout);
* ``.parquet``: needs pyarrow (``pip install 'jnskr[parquet]'``).

Embeddings (`export_embeddings`), one pair of files per table in the output folder:

    users.npy      float32 [n_users, d]    p_u
    users.tsv      row, id
    items.npy      float32 [n_items, d]    q_v = e_v + m_v (what scoring uses)
    items_base.npy float32 [n_items, d]    e_v (JNSKR only)
    items.tsv      row, id, name
    entities.npy   float32 [n_tails, d]    x_t, the KG tail entities (JNSKR with a KG)
    entities.tsv   row, id, name
    relations.npy  float32 [n_relations, d] z_r (JNSKR with a KG)
    relations.tsv  row, name
    h.npy          float32 [d]             the prediction vector: ŷ_uv = hᵀ(p_u ∘ q_v)
    manifest.json  what each file holds, shapes, the run and the model

Row i of ``X.npy`` is the entity on row i of ``X.tsv`` (a header line, then tab-separated
fields; tabs/newlines inside names are replaced by spaces).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from jnskr.errors import JnskrError
from jnskr.runs import atomic_write_bytes, atomic_write_text

FORMATS = (".csv", ".jsonl", ".parquet")
PARQUET_HINT = "writing .parquet needs pyarrow: pip install 'jnskr[parquet]' (or pyarrow), or use .csv / .jsonl"


def output_format(path: str | Path) -> str:
    """``csv``, ``jsonl`` or ``parquet`` from the file name (``-`` is JSON Lines on stdout)."""
    s = str(path)
    if s == "-":
        return "jsonl"
    suffix = Path(s).suffix.lower()
    if suffix not in FORMATS:
        raise JnskrError(f"--output {s}: unknown format {suffix or '(no suffix)'!r}; use .csv, .jsonl or .parquet")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise JnskrError(PARQUET_HINT) from None
    return suffix[1:]


class RecommendationWriter:
    """Collects rows (dicts with the export columns), then writes them atomically."""

    def __init__(self, path: str | Path, with_names: bool, with_explanations: bool):
        self.path = str(path)
        self.fmt = output_format(path)
        self.columns = ["user", "item", "rank", "score"] + (["item_name"] if with_names else [])
        if with_explanations:
            self.columns += ["base", "kg", "facts"]
        self.rows: list[dict] = []

    def add(self, rows: list[dict]) -> None:
        self.rows.extend(rows)

    def _flat(self, row: dict) -> dict:
        out = {c: row.get(c) for c in self.columns}
        if "facts" in out and self.fmt != "jsonl":
            out["facts"] = json.dumps(out["facts"], ensure_ascii=False)
        return out

    def close(self) -> int:
        if self.fmt == "jsonl":
            text = "".join(json.dumps(self._flat(r), ensure_ascii=False) + "\n" for r in self.rows)
            if self.path == "-":
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                _write_text(Path(self.path), text)
        elif self.fmt == "csv":
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
            w.writeheader()
            for r in self.rows:
                w.writerow(self._flat(r))
            _write_text(Path(self.path), buf.getvalue())
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            flat = [self._flat(r) for r in self.rows]
            types = {"user": pa.string(), "item": pa.string(), "rank": pa.int32(), "score": pa.float32(),
                     "item_name": pa.string(), "base": pa.float64(), "kg": pa.float64(), "facts": pa.string()}
            table = pa.table({c: pa.array([r[c] for r in flat], type=types[c]) for c in self.columns})
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            _write_bytes(Path(self.path), sink.getvalue().to_pybytes())
        return len(self.rows)


def read_id_file(path: str | Path, what: str) -> list[str]:
    """Raw ids, one a line (blank lines and ``#`` comments skipped; duplicates kept once)."""
    from jnskr.data.readers.common import decode_lines, read_bytes

    out: list[str] = []
    seen: set[str] = set()
    for line in decode_lines(read_bytes(Path(path))):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s not in seen:
            seen.add(s)
            out.append(s)
    if not out:
        raise JnskrError(f"{path}: no {what} ids")
    return out


def _umask_perms(path: Path) -> None:
    """Atomic writes go through mkstemp (mode 0600); give output files the usual mode."""
    mask = os.umask(0)
    os.umask(mask)
    try:
        os.chmod(path, 0o666 & ~mask)
    except OSError:
        pass


def _write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)
    _umask_perms(path)


def _write_bytes(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)
    _umask_perms(path)


def _clean(s) -> str:
    return "" if s is None else str(s).replace("\t", " ").replace("\n", " ").replace("\r", " ")


def _tsv(header: list[str], rows) -> str:
    return "\t".join(header) + "\n" + "".join("\t".join(_clean(x) for x in r) + "\n" for r in rows)


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


@torch.no_grad()
def export_embeddings(rec, out_dir: str | Path) -> dict:
    """Write the run's embedding tables into `out_dir` (see the module docstring); return the
    manifest."""
    rec._require_model()
    kind = rec.config.model
    if kind == "popularity":
        raise JnskrError("a popularity run has no embeddings to export")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise JnskrError(f"--output {out}: exists and is not a folder")
    model = rec.model.eval()
    ids = rec.ids
    n_users, n_items = int(ids["n_users"]), int(ids["n_items"])
    user_ids = ids.get("user_ids") or [str(u) for u in range(n_users)]
    item_ids = ids.get("item_ids") or [str(i) for i in range(n_items)]
    item_names = ids.get("item_names") or [""] * n_items
    files: dict[str, dict] = {}

    def put(name: str, arr: torch.Tensor, tsv: str | None, what: str) -> None:
        a = arr.detach().float().cpu().numpy()
        _write_bytes(out / f"{name}.npy", _npy_bytes(a))
        files[f"{name}.npy"] = {"shape": list(a.shape), "what": what}
        if tsv is not None:
            files[f"{name}.npy"]["ids"] = tsv

    out.mkdir(parents=True, exist_ok=True)
    put("users", model.users(), "users.tsv", "user vectors p_u")
    _write_text(out / "users.tsv", _tsv(["row", "id"], enumerate(user_ids)))
    put("items", model.item_vectors(), "items.tsv", "item vectors q_v = e_v + m_v (used for scoring)")
    _write_text(out / "items.tsv", _tsv(["row", "id", "name"],
                                              ((k, i, n) for k, (i, n) in enumerate(zip(item_ids, item_names)))))
    if kind in ("jnskr", "jnskr_sampled"):
        put("items_base", model.item_emb, "items.tsv", "item base vectors e_v")
        if model.has_kg:
            from jnskr.explain import Names

            names = Names(ids, rec.item_kg.tail_entity if rec.item_kg is not None else None)
            put("entities", model.tails(), "entities.tsv", "KG tail entity vectors x_t")
            _write_text(out / "entities.tsv", _tsv(
                ["row", "id", "name"],
                ((t, names.entity(t), names.entity_name(t) or "") for t in range(model.n_tails))))
            put("relations", model.rel_emb[: model.n_relations], "relations.tsv", "KG relation vectors z_r")
            _write_text(out / "relations.tsv", _tsv(["row", "name"],
                                                          ((r, names.relation(r)) for r in range(model.n_relations))))
    put("h", model.h, None, "prediction vector h: score = h . (p_u * q_v)")
    manifest = {
        "model": kind, "dataset": ids.get("dataset"), "embed_dim": int(model.h.shape[0]),
        "score": "score(u, v) = sum_k h[k] * users[u, k] * items[v, k]",
        "files": files,
        "tsv": "header line, then tab-separated fields; `row` is the row in the matching .npy",
    }
    _write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest
