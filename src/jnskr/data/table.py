"""Delimited text tables (TSV, CSV, whitespace, any separator) with string ids.

`read_table` reads one file into string columns, found by header name or by position:

* **separator**: ``auto`` sniffs the first non-blank line (a tab, else a comma, else runs of
  whitespace); or a name (``tab``, ``comma``, ``semicolon``, ``pipe``, ``whitespace``); or the
  literal separator (``::``).  A comma- (or other one-character-) separated file holding a
  double quote is parsed as RFC 4180 CSV: ``"a,b"`` is one field, ``""`` a quote; a quoted
  field may not run past its line.  Tab-separated fields are taken as they are.
* **header**: the first non-blank line is a header when one of its fields (case-insensitive,
  before any ``:type`` suffix) is a configured column name or a name the reader knows (by name),
  or when a field of it is a word (no digit) above a column whose next rows are all numbers (by
  type: ``customer product qty`` above ``17 4 2``); `Table.header_note` then says so.  The
  header line repeated further down (concatenated files) is an error, as is a header with no
  rows under it.
* **columns**: each `Column` is a header name (``"userID"``), a 1-based position (``2``) or
  ``None``: then the first known name present in the header, else the default position.

Every problem is a `DataError` naming the file and the line.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from jnskr.data.parse import decode_lines, read_bytes
from jnskr.errors import DataError

SEPARATORS = {"tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "whitespace": None}


@dataclass
class Column:
    """A column wanted from a table."""

    key: str  # what it is: "user", "item", "weight", ...
    spec: str | int | None = None  # configured: header name, 1-based position, or None (auto)
    known: tuple[str, ...] = ()  # header names recognised for it (lower case)
    default: int | None = None  # 1-based position without a header match; None: optional
    empty_ok: bool = False  # an empty field is allowed (names, unused weights)


@dataclass
class Table:
    """String columns of a delimited file."""

    path: str
    columns: dict[str, np.ndarray]  # key -> str array, one entry per row
    lines: np.ndarray  # int64, the 1-based line of each row
    names: dict[str, str]  # key -> how the column was found ("weight" or "column 3")
    header: list[str] | None = None
    unused: list[str] = field(default_factory=list)  # header names of columns not read
    header_note: str | None = None  # set when the header was recognised by type, not by a name

    def __len__(self) -> int:
        return len(self.lines)


def resolve_separator(sep: str | None) -> str:
    """``"auto"`` or a separator: a name of `SEPARATORS` or the literal string."""
    if sep is None or sep == "auto":
        return "auto"
    return SEPARATORS.get(sep, sep) or "whitespace"


def sniff(line: str) -> str | None:
    """Delimiter of a line: tab, else comma, else None (whitespace)."""
    if "\t" in line:
        return "\t"
    if "," in line:
        return ","
    return None


def _splitter(sep: str | None, quoted: bool, path: str, first_line: int):
    """A function lines -> (rows, line numbers) for this separator."""
    def plain(lines: list[str]) -> tuple[list[list[str]], list[int]]:
        rows, nos = [], []
        for k, ln in enumerate(lines):
            if ln.strip():
                rows.append(ln.split(sep) if sep is not None else ln.split())
                nos.append(first_line + k)
        return rows, nos

    def rfc4180(lines: list[str]) -> tuple[list[list[str]], list[int]]:
        rows, nos = [], []
        reader = csv.reader(lines, delimiter=sep, strict=True)
        done = 0
        try:
            for row in reader:
                if reader.line_num - done > 1:
                    raise DataError("a quoted field runs past the end of the line (unclosed quote?)",
                                    path, first_line + done)
                done = reader.line_num
                if any(f.strip() for f in row):
                    rows.append(row)
                    nos.append(first_line + done - 1)
        except csv.Error as exc:
            raise DataError(f"bad CSV quoting ({exc}; an unclosed quote?)", path, first_line + done) from None
        return rows, nos

    return rfc4180 if quoted else plain


def _fields(line: str, sep: str | None) -> list[str]:
    if sep is not None and len(sep) == 1 and sep != "\t" and '"' in line:
        try:
            return next(csv.reader([line], delimiter=sep))
        except (csv.Error, StopIteration):
            pass
    return line.split(sep) if sep is not None else line.split()


def _sep_name(sep: str | None) -> str:
    return next((f"a {k}" for k, v in SEPARATORS.items() if v == sep), repr(sep))


def _bare(name: str) -> str:
    return name.strip().lower().split(":")[0]


def _is_number(v: str) -> bool:
    try:
        return math.isfinite(float(v))
    except ValueError:
        return False


#: how many rows under the first line `header_by_type` looks at
TYPE_SAMPLE = 50


def header_by_type(head: list[str], lines: list[str], first: int, sep: str | None) -> str | None:
    """The name of a field of the first line that is a word (a letter, no digit; not nan or inf)
    above a column whose next `TYPE_SAMPLE` rows are all numbers, in a first line without a
    number; None when there is none."""
    if any(_is_number(h) for h in head):
        return None
    sample = [_fields(ln, sep) for ln in lines[first + 1:] if ln.strip()][:TYPE_SAMPLE]
    for j, h in enumerate(head):
        if (not any(ch.isalpha() for ch in h) or any(ch.isdigit() for ch in h)
                or h.lower().lstrip("+-") in ("nan", "inf", "infinity")):
            continue
        below = [row[j].strip() for row in sample if len(row) > j]
        if below and all(_is_number(v) for v in below):
            return h
    return None


def read_table(path: Path | str, columns: list[Column], sep: str | None = "auto",
               header_names: tuple[str, ...] = (), *, what: str = "rows", exact: bool = False,
               lines: list[str] | None = None) -> Table:
    """Read the ``columns`` of a delimited file (see the module docstring).

    ``header_names``: more names that mark the first line as a header (other known columns).
    ``what`` names the rows in the "no rows" error ("interactions", "triples", ...).
    ``exact``: with a header, every row has exactly its number of fields.  ``lines``: the
    file's decoded lines when the caller has read them already.
    """
    path = Path(path)
    where = str(path)
    if lines is None:
        lines = decode_lines(read_bytes(path))
    first = next((k for k, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise DataError("empty file", where)
    sep = resolve_separator(sep)
    sep = sniff(lines[first]) if sep == "auto" else (None if sep == "whitespace" else sep)
    head = [f.strip() for f in _fields(lines[first], sep)]
    bare = [_bare(h) for h in head]
    configured = {c.spec.strip().lower() for c in columns if isinstance(c.spec, str) and not c.spec.strip().isdigit()}
    known = configured | {n for c in columns for n in c.known} | set(header_names)
    has_header = any(b in known for b in bare)
    typed = None if has_header else header_by_type(head, lines, first, sep)
    has_header = has_header or typed is not None
    pos: dict[str, int] = {}
    names: dict[str, str] = {}
    pending = []
    for c in columns:
        spec = int(c.spec) if isinstance(c.spec, str) and c.spec.strip().isdigit() else c.spec
        if isinstance(spec, int):
            if spec < 1:
                raise DataError(f"column {c.key}: position {spec} (positions start at 1)", where)
            pos[c.key] = spec - 1
        elif isinstance(spec, str):
            if not has_header:
                raise DataError(f"no header line, so no column {spec!r} ({c.key}); give its position (1-based) "
                                f"instead", where, first + 1)
            if spec.strip().lower() not in bare:
                raise DataError(f"no column {spec!r} ({c.key}) in the header (columns: {', '.join(head)})",
                                where, first + 1)
            pos[c.key] = bare.index(spec.strip().lower())
        else:
            hit = next((bare.index(n) for n in c.known if has_header and n in bare), None)
            if hit is not None:
                pos[c.key] = hit
            elif c.default is not None:
                pending.append(c)
    for c in pending:  # by default position, unless a named column holds it
        if c.default - 1 in pos.values():
            raise DataError(f"no {c.key} column found in the header (columns: {', '.join(head)}); name it",
                            where, first + 1)
        pos[c.key] = c.default - 1
    for k, j in pos.items():
        names[k] = head[j] if has_header and j < len(head) else f"column {j + 1}"
    start = first + 1 if has_header else first
    quoted = sep is not None and len(sep) == 1 and sep != "\t" and any('"' in ln for ln in lines[start:])
    rows, nos = _splitter(sep, quoted, where, start + 1)(lines[start:])
    if not rows:
        raise DataError(f"no {what} after the header" if has_header else f"no {what}", where)
    need = len(head) if exact and has_header else max(pos.values(), default=-1) + 1
    strip_head = [h.strip() for h in head]
    out: dict[str, list[str]] = {k: [] for k in pos}
    widest = 0
    for row, no in zip(rows, nos):
        if len(row) < need or (exact and has_header and len(row) != need):
            hint = ""
            if len(row) < need and sep not in (None, " ") and " " in row[0].strip():
                hint = f" (fields separated by spaces? the separator here is {_sep_name(sep)})"
            raise DataError(f"expected {need} fields, got {len(row)}{hint}", where, no)
        if has_header and len(row) == len(head) and [f.strip() for f in row] == strip_head:
            raise DataError("the header line again (files concatenated?)", where, no)
        widest = max(widest, len(row))
        for k, j in pos.items():
            v = row[j].strip()
            if not v and columns_required(columns, k):
                raise DataError(f"empty {k} (field {j + 1})", where, no)
            out[k].append(v)
    used = set(pos.values())
    if has_header:
        unused = [h for j, h in enumerate(head) if j not in used]
    else:
        unused = [f"column {j + 1}" for j in range(widest) if j not in used]
    note = None if typed is None else (f"line {first + 1} read as a header ({', '.join(head)}): {typed!r} is "
                                       f"not a number, unlike the rows below")
    return Table(where, {k: np.asarray(v, dtype=str) for k, v in out.items()}, np.asarray(nos, dtype=np.int64),
                 names, head if has_header else None, unused, note)


def columns_required(columns: list[Column], key: str) -> bool:
    c = next(c for c in columns if c.key == key)
    return not c.empty_ok


def parse_numbers(values: np.ndarray, lines: np.ndarray, path: str, what: str) -> np.ndarray:
    """Finite decimal numbers -> float64; the first other value is a `DataError` at its line."""
    out = np.empty(len(values), dtype=np.float64)
    for k, v in enumerate(values.tolist()):
        try:
            x = float(v)
        except ValueError:
            x = math.nan
        if not math.isfinite(x) or not v.isascii():
            raise DataError(f"{what} {v[:30]!r} is not a finite number", path, int(lines[k]))
        out[k] = x
    return out


def parse_times(values: np.ndarray, lines: np.ndarray, path: str, what: str = "timestamp") -> np.ndarray:
    """Numbers (epoch seconds, or any number that orders time), or ISO-8601 dates and times."""
    try:
        return parse_numbers(values, lines, path, what)
    except DataError:
        pass
    out = np.empty(len(values), dtype=np.float64)
    for k, v in enumerate(values.tolist()):
        try:
            x = float(v)
            if not math.isfinite(x):
                raise ValueError
        except ValueError:
            try:
                t = datetime.fromisoformat(v)
            except ValueError:
                raise DataError(f"{what} {v[:30]!r} is neither a number nor an ISO-8601 date", path,
                                int(lines[k])) from None
            x = t.timestamp() if t.tzinfo else (t - datetime(1970, 1, 1)).total_seconds()
        out[k] = x
    return out
