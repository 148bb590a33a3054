"""Shared, vectorised file and line parsing for the readers.

Every reader goes through `read_bytes`, which refuses a path that is missing, a folder, a FIFO,
a device, a broken symbolic link or a link loop (`check_file` says which), an empty file and
bytes that are not UTF-8 text, with a `DataError` naming file and line; a UTF-8 byte-order mark
is dropped.  Then either `parse_int_lines` (KGAT's whitespace-separated integer files, parsed on
the raw bytes with numpy: no Python object per token) or `jnskr.data.table` (delimited text
with string ids: RecBole atomic files, TSV/CSV).

Line numbers in errors are 1-based and count physical lines (``\\n``), header included.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jnskr.data.arrays import KnowledgeGraph
from jnskr.errors import DataError

#: ids above this are refused before any table of that size is allocated
DEFAULT_MAX_ID = 10**8

# ASCII whitespace as bytes.split() sees it: \t \n \v \f \r and space.
_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 11, 12, 13, 32]] = True


def unique_sorted(x: np.ndarray) -> np.ndarray:
    """``np.unique`` for 1-D int arrays via sort (numpy 2.x's hash-based unique is much slower)."""
    y = np.sort(np.asarray(x), kind="stable")
    if len(y) < 2:
        return y
    keep = np.empty(len(y), dtype=bool)
    keep[0] = True
    np.not_equal(y[1:], y[:-1], out=keep[1:])
    return y[keep]


BOM = b"\xef\xbb\xbf"


def file_problem(path: Path | str) -> str | None:
    """What keeps ``path`` from being read as a regular file, or None when it is one.

    "missing file", "is a folder, not a file", "is a FIFO (named pipe), not a regular file",
    "is a socket ...", "is a device ...", "broken symbolic link (to X)", "symbolic link loop",
    or the OS's own words ("Permission denied")."""
    p = str(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            return f"broken symbolic link (to {os.readlink(p)})"
        return "missing file"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        return exc.strerror or str(exc)
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    return "not a regular file"


def check_file(path: Path | str, hint: str = "") -> None:
    """Raise `DataError` unless ``path`` is a regular file (``hint`` follows a missing file)."""
    problem = file_problem(path)
    if problem is not None:
        raise DataError(problem + (hint if problem == "missing file" else ""), str(path))


def present(path: Path | str) -> bool:
    """Whether something exists at ``path`` (a broken link counts); when it does, it must be a
    regular file (else `DataError`): for optional files, which are skipped only when absent."""
    if not os.path.lexists(str(path)):
        return False
    check_file(path)
    return True


def list_folder(folder: Path) -> list[str]:
    """Names in ``folder`` (sorted); an unreadable folder is a `DataError`."""
    try:
        return sorted(p.name for p in Path(folder).iterdir())
    except OSError as exc:
        raise DataError(f"cannot list the folder ({exc.strerror or exc})", str(folder)) from None


def read_bytes(path: Path, *, allow_empty: bool = False) -> bytes:
    """Read a (possibly ``.gz``/``.zip`` compressed) text file and check it is UTF-8.

    Raises `DataError` for a missing file, an empty file (unless ``allow_empty``) and
    bytes that are not UTF-8 text (binary junk), naming the first bad line.
    """
    path = Path(path)
    check_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read ({exc.strerror or exc})", str(path)) from None
    try:
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        elif path.suffix == ".zip":
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                members = [m for m in zf.namelist() if not m.endswith("/")]
                if not members:
                    raise DataError("zip archive holds no file", str(path))
                raw = zf.read(members[0])
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot decompress ({exc})", str(path)) from None
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
    if not allow_empty and not raw.strip():
        raise DataError("empty file", str(path))
    check_utf8(raw, path)
    return raw


def check_utf8(raw: bytes, path: Path | str) -> None:
    """Refuse bytes that are not UTF-8 text, or that hold NUL bytes (binary junk)."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError("not UTF-8 text but UTF-16 (save the file as UTF-8)", str(path), 1)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError("not UTF-8 text (binary file?)", str(path), line) from None
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError("NUL byte: binary data, not text", str(path), raw.count(b"\n", 0, nul) + 1)


def line_of(raw: bytes, pos: int) -> int:
    """1-based line number of byte offset ``pos``."""
    return raw.count(b"\n", 0, pos) + 1


def _show(tok: bytes) -> str:
    s = tok.decode("utf-8", errors="backslashreplace")
    return repr(s if len(s) <= 30 else s[:27] + "...")


@dataclass
class IntTokens:
    """Integer tokens of a whitespace-separated file, with their 1-based line numbers."""

    values: np.ndarray  # int64 [n_tokens]
    lines: np.ndarray  # int64 [n_tokens], 1-based line of each token
    first: np.ndarray  # bool [n_tokens], token is the first of its line

    def per_line_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(line numbers of non-empty lines, number of tokens on each)."""
        starts = np.flatnonzero(self.first)
        counts = np.diff(np.append(starts, len(self.values)))
        return self.lines[starts], counts


def parse_int_lines(raw: bytes, path: Path | str, max_id: int = DEFAULT_MAX_ID) -> IntTokens:
    """Parse every whitespace-separated token of ``raw`` as a non-negative integer <= ``max_id``.

    Vectorised over the bytes: the bytes are checked to be digits or ASCII whitespace, token
    starts come from a whitespace mask, tokens per line from the newline positions, and the
    values from numpy's C text parser.  CR, tabs and repeated/trailing spaces are plain
    whitespace.  The first bad token raises `DataError` with its line: a non-integer token
    (quoted), a negative id, or an id above ``max_id``.
    """
    b = np.frombuffer(raw, dtype=np.uint8)
    empty = np.zeros(0, np.int64)
    if len(b) == 0:
        return IntTokens(empty, empty, np.zeros(0, bool))
    tok = b > 32
    bad = np.flatnonzero((tok & ((b < 48) | (b > 57))) | (b < 9) | ((b > 13) & (b < 32)))
    if len(bad):
        p = int(bad[0])
        s = p
        while s > 0 and not _WS[raw[s - 1]]:
            s -= 1
        e = p
        while e < len(raw) and not _WS[raw[e]]:
            e += 1
        token = raw[s:e]
        if token[:1] == b"-" and token[1:].isdigit():
            raise DataError(f"negative id {token.decode()}", str(path), line_of(raw, s))
        raise DataError(f"non-integer token {_show(token)}", str(path), line_of(raw, s))
    start_mask = tok.copy()
    start_mask[1:] &= ~tok[:-1]
    starts = np.flatnonzero(start_mask)
    if len(starts) == 0:
        return IntTokens(empty, empty, np.zeros(0, bool))
    end_mask = tok.copy()
    end_mask[:-1] &= ~tok[1:]
    lengths = np.flatnonzero(end_mask) + 1 - starts
    long_tok = np.flatnonzero(lengths > 18)
    for k in long_tok:  # would overflow int64 unless only leading zeros made it long
        v = int(raw[starts[k] : starts[k] + lengths[k]])
        if v > max_id:
            raise DataError(f"id {str(v)[:30]} exceeds max_id={max_id}", str(path), line_of(raw, int(starts[k])))
    if len(long_tok):
        vals = np.array([int(raw[a : a + n]) for a, n in zip(starts.tolist(), lengths.tolist())], dtype=np.int64)
    else:
        vals = np.fromstring(raw, dtype=np.int64, sep=" ")  # text mode: not deprecated
        if len(vals) != len(starts):  # cannot happen for digits and whitespace; be safe
            vals = np.array([int(t) for t in raw.split()], dtype=np.int64)
    # tokens per line from the newline positions (a last line without "\n" counts too)
    nl = np.flatnonzero(b == 10)
    if len(nl) == 0 or nl[-1] != len(b) - 1:
        nl = np.append(nl, len(b))
    per_line = np.diff(np.searchsorted(starts, nl), prepend=0)
    lines = np.repeat(np.arange(1, len(nl) + 1, dtype=np.int64), per_line)
    too_big = np.flatnonzero(vals > max_id)
    if len(too_big):
        k = int(too_big[0])
        raise DataError(f"id {int(vals[k])} exceeds max_id={max_id}", str(path), int(lines[k]))
    first = np.zeros(len(vals), dtype=bool)
    first[np.cumsum(per_line)[per_line > 0] - per_line[per_line > 0]] = True
    return IntTokens(vals.astype(np.int64, copy=False), lines, first)


def parse_triples(raw: bytes, path: Path | str, max_id: int = DEFAULT_MAX_ID, *, with_lines: bool = False):
    """``head relation tail`` integer lines -> three int64 arrays (blank lines skipped), and
    with ``with_lines`` a fourth: the 1-based line of each triple."""
    toks = parse_int_lines(raw, path, max_id)
    line_nos, counts = toks.per_line_counts()
    wrong = np.flatnonzero(counts != 3)
    if len(wrong):
        k = int(wrong[0])
        raise DataError(
            f"expected 3 fields (head relation tail), got {int(counts[k])}", str(path), int(line_nos[k])
        )
    t = toks.values.reshape(-1, 3)
    out = (t[:, 0].copy(), t[:, 1].copy(), t[:, 2].copy())
    return out + (line_nos,) if with_lines else out


def decode_lines(raw: bytes) -> list[str]:
    """Text lines with CR stripped (raw must already be checked as UTF-8)."""
    text = raw.decode("utf-8")
    if text.startswith("\ufeff"):  # read_bytes drops it already; bytes from elsewhere may hold one
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def is_decimal(s: str) -> bool:
    """ASCII digits only ("²" and "١" pass `str.isdigit` but are no decimal ids)."""
    return s.isascii() and s.isdigit()


def dense_ids(raw_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number string ids 0..n-1 in ascending order: numeric when every id is a decimal
    integer (so "10" comes after "9"), else lexicographic.  Returns (unique raw ids, codes)."""
    raw_ids = np.asarray(raw_ids, dtype=str)
    uniq, inv = np.unique(raw_ids, return_inverse=True)
    if len(uniq) and all(is_decimal(s) for s in uniq.tolist()) and max(len(s) for s in uniq.tolist()) <= 18:
        order = np.argsort(uniq.astype(np.int64), kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return uniq[order], rank[inv].astype(np.int64)
    return uniq, inv.astype(np.int64)


def sorted_ids(values: list[str] | np.ndarray) -> np.ndarray:
    """Unique string ids in the `dense_ids` order."""
    return dense_ids(np.asarray(values, dtype=str))[0] if len(values) else np.zeros(0, dtype=str)


def build_kg(
    heads: np.ndarray, relations: np.ndarray, tails: np.ndarray, item_entity: np.ndarray
) -> tuple[KnowledgeGraph, int]:
    """Number a KG given as raw string triples.

    ``item_entity[i]`` is the raw entity id of item i (``""`` when the item is not linked).
    Item i becomes entity i; the other entities follow, numbered in `dense_ids` order (sorted);
    relations are numbered in sorted name order.  When several items link to one entity, the
    entity's facts go to the first of them; their number is returned with the KG.
    """
    n_items = len(item_entity)
    item_entity = np.asarray(item_entity, dtype=str)
    ent_uniq, inv = np.unique(np.concatenate([np.asarray(heads, str), np.asarray(tails, str)]), return_inverse=True)
    code = np.full(len(ent_uniq), -1, dtype=np.int64)
    linked = np.flatnonzero(item_entity != "")
    le_uniq, first = np.unique(item_entity[linked], return_index=True)
    shared = len(linked) - len(le_uniq)
    if len(ent_uniq) and len(le_uniq):
        pos = np.searchsorted(ent_uniq, le_uniq).clip(max=len(ent_uniq) - 1)
        found = ent_uniq[pos] == le_uniq
        code[pos[found]] = linked[first[found]]
    others = np.flatnonzero(code < 0)
    other_raw, rank = dense_ids(ent_uniq[others]) if len(others) else (np.zeros(0, str), np.zeros(0, np.int64))
    code[others] = n_items + rank
    ids = code[inv.ravel()]
    rel_names, rel = dense_ids(np.asarray(relations, str)) if len(relations) else (np.zeros(0, str), np.zeros(0, np.int64))
    kg = KnowledgeGraph(
        heads=ids[: len(heads)].astype(np.int64),
        relations=rel.astype(np.int64),
        tails=ids[len(heads) :].astype(np.int64),
        n_entities=n_items + len(other_raw),
        n_relations=len(rel_names),
        relation_names=np.asarray(rel_names, dtype=str),
        entity_ids=np.concatenate([item_entity, np.asarray(other_raw, dtype=str)]),
    )
    return kg, int(shared)
