"""Writing recommendations and embeddings to files.

Recommendations (`write_recommendations`): one row per (user, recommended item) with columns
``user, item, rank, score[, item_name]`` -- raw ids as in the dataset, ranks from 1, rows
grouped by user in the order asked.  With explanations, rows also carry ``base`` (hᵀ(p∘e_v)),
``kg`` (Σ fact contributions; score = base + kg) and ``facts`` (the top facts: a JSON list in
CSV/Parquet, a nested list in JSON Lines).  The format follows the suffix:

* ``.csv``: RFC 4180 via the csv module.  A text cell (a user or item id, a name) that starts
  with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (or their full-width forms) gets a
  leading ``'``, so a spreadsheet shows it instead of running it as a formula (OWASP's advice on
  CSV injection; `formula_safe`).  Number cells (rank, score, base, kg) are numbers, never
  changed: a negative score stays ``-0.25``.  ``raw_csv=True`` (``--raw-csv``) writes every cell
  as it is;
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

import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

from jnskr.errors import JnskrError
from jnskr.outputs import check_folder_out
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


#: how a cell that a spreadsheet runs as a formula can start (OWASP, CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def formula_safe(value):
    """A CSV cell a spreadsheet will show, not run: a string starting with `FORMULA_START` gets a
    leading ``'``; anything else (numbers included) is returned as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


_QUOTED = re.compile('[,"\r\n]')


def csv_line(values) -> str:
    """One CSV record ending in ``\\n``: RFC 4180 quoting of every field holding a comma, a
    quote, ``\\r`` or ``\\n`` -- the csv module with ``lineterminator="\\n"`` leaves a lone
    ``\\r`` unquoted, and readers then start a new record inside a name."""
    out = []
    for v in values:
        s = "" if v is None else str(v)
        out.append('"' + s.replace('"', '""') + '"' if _QUOTED.search(s) else s)
    return ",".join(out) + "\n"


class RecommendationWriter:
    """Collects rows (dicts with the export columns), then writes them atomically.  `raw_csv`:
    CSV text cells as they are, without `formula_safe`."""

    def __init__(self, path: str | Path, with_names: bool, with_explanations: bool, raw_csv: bool = False):
        self.path = str(path)
        self.raw_csv = bool(raw_csv)
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
            cell = (lambda v: v) if self.raw_csv else formula_safe
            lines = [csv_line(self.columns)]
            lines += [csv_line([cell(v) for v in self._flat(r).values()]) for r in self.rows]
            _write_text(Path(self.path), "".join(lines))
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
    from jnskr.data.parse import decode_lines, read_bytes

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


def _write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def _write_bytes(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)


def _exported(out: Path) -> set[str]:
    """The files an earlier export wrote into `out` (its manifest.json, read as ours only when it
    has an export manifest's shape)."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return set()
    if not (isinstance(manifest, dict) and isinstance(manifest.get("files"), dict) and "tsv" in manifest):
        return set()
    owned = {"manifest.json"}
    for name, info in manifest["files"].items():
        owned.add(str(name))
        if isinstance(info, dict) and isinstance(info.get("ids"), str):
            owned.add(info["ids"])
    return owned


def _clean(s) -> str:
    return "" if s is None else str(s).replace("\t", " ").replace("\n", " ").replace("\r", " ")


def _tsv(header: list[str], rows) -> str:
    return "\t".join(header) + "\n" + "".join("\t".join(_clean(x) for x in r) + "\n" for r in rows)


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


@torch.no_grad()
def export_embeddings(rec, out_dir: str | Path, overwrite: bool = False) -> dict:
    """Write the run's embedding tables (`Model.embeddings()`) into `out_dir` (see the module
    docstring); return the manifest.  A file of the same name that an earlier export did not
    write (its manifest.json does not list it) is refused before anything is written, unless
    `overwrite`."""
    model = rec.model.eval()
    tables = model.embeddings()  # raises NotSupported for a model without embeddings
    out = Path(out_dir)
    names = {f"{stem}.npy" for stem, *_ in tables} | {"manifest.json", "users.tsv", "items.tsv", "entities.tsv",
                                                     "relations.tsv"}
    check_folder_out(out, names, _exported(out), "--output", overwrite)
    ids = rec.ids
    names = rec.names()
    n_tails = len(ids.tail_entity_ids)
    id_files = {
        "users": ("users.tsv", ["row", "id"], lambda: enumerate(ids.users())),
        "items": ("items.tsv", ["row", "id", "name"],
                  lambda: ((k, i, ids.item_name(k) or "") for k, i in enumerate(ids.items()))),
        "entities": ("entities.tsv", ["row", "id", "name"],
                     lambda: ((t, names.entity(t), names.entity_name(t) or "") for t in range(n_tails))),
        "relations": ("relations.tsv", ["row", "name"],
                      lambda: ((r, names.relation(r)) for r in range(len(ids.relation_names)))),
    }
    files: dict[str, dict] = {}
    written: set[str] = set()
    out.mkdir(parents=True, exist_ok=True)
    for stem, tensor, what, kind in tables:
        a = tensor.detach().float().cpu().numpy()
        _write_bytes(out / f"{stem}.npy", _npy_bytes(a))
        files[f"{stem}.npy"] = {"shape": list(a.shape), "what": what}
        if kind is not None:
            fname, header, rows = id_files[kind]
            files[f"{stem}.npy"]["ids"] = fname
            if fname not in written:
                _write_text(out / fname, _tsv(header, rows()))
                written.add(fname)
    manifest = {
        "model": rec.config.model, "dataset": ids.dataset, "embed_dim": int(tables[0][1].shape[-1]),
        "score": "score(u, v) = sum_k h[k] * users[u, k] * items[v, k] (h = 1 when there is no h.npy)",
        "files": files,
        "tsv": "header line, then tab-separated fields; `row` is the row in the matching .npy",
    }
    _write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def is_our_export(path: Path) -> bool:
    """Whether `path` looks like a file `RecommendationWriter` wrote: a CSV whose header starts with
    ``user,item,rank`` (or ``item,rank`` for `similar`), JSON Lines whose first record has those keys,
    or a Parquet file whose schema names them."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read()
    except OSError:
        return False
    if head.startswith((b"user,item,rank", b"item,rank", b"query,item,rank")):
        return True
    if head.startswith(b"{"):
        first = head.split(b"\n", 1)[0]
        return b'"item"' in first and b'"rank"' in first
    return head.startswith(b"PAR1") and b"rank" in tail and b"item" in tail
