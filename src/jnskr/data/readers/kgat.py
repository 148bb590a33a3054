"""Reader for KGAT-format folders (amazon-book, yelp2018, last-fm, kgcn-music, ml100k-kgat).

Files:

* ``train.txt`` (required) and ``test.txt`` (optional: an empty test set and a warning
  without it): one line per user, ``uid item item ...``.  Blank lines, ``uid`` alone,
  trailing spaces, tabs and CRLF are accepted; duplicate items in a line are removed (counted
  in ``stats['duplicate_train_items']`` / ``['duplicate_test_items']``); a user on several
  lines gets the union.
* ``kg_final.txt`` (or ``.gz`` / ``.zip``): ``head relation tail`` integer triples; entity i
  is item i.  Without it, ``kg_feat.npz`` is used (see `jnskr.data.readers.kgfeat`); without
  both, the dataset has no KG.
* optional ``user_list.txt``, ``item_list.txt``, ``entity_list.txt``, ``relation_list.txt``:
  a header line, then ``org_id ... remap_id`` rows (the remap id is the last token; org ids may
  hold spaces or be empty).  ``item_list.txt`` has the header ``org_id remap_id freebase_id``;
  Yelp2018's rows have only two tokens, the remap id glued to the business id
  (``abc 0abc``): both layouts are read.  A remap id must be ASCII digits (``²`` is refused)
  and appear once.

Counting as KGAT does: ``n_users`` = max user id + 1 over train, test and user_list;
``n_items`` = max item id + 1 over train, test and item_list (and kg_feat rows);
``n_entities`` = max(KG max id + 1, n_items, entity_list size); ``n_relations`` likewise.
These sizes are checked against the memory limit (`jnskr.data.memory.check_memory`) before any
table of that size is built: the error names the file, the line and the id responsible.

Every file is checked to be a regular file (a folder, FIFO or link loop named ``train.txt`` is
reported as such); other files in the folder are named in warnings.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from jnskr.data.arrays import Interactions
from jnskr.data.dataset import Dataset, KnowledgeGraph
from jnskr.data.memory import check_memory
from jnskr.data.parse import (
    DEFAULT_MAX_ID,
    check_file,
    decode_lines,
    is_decimal,
    list_folder,
    parse_int_lines,
    parse_triples,
    present,
    read_bytes,
)
from jnskr.data.readers.kgfeat import read_kg_feat
from jnskr.data.validate import finish, unread_files
from jnskr.errors import DataError

KG_FILES = ("kg_final.txt", "kg_final.txt.gz", "kg_final.txt.zip")
LIST_FILES = tuple(f"{k}_list.txt" for k in ("user", "item", "entity", "relation"))
_GLUED = re.compile(r"[0-9]+", re.ASCII)


class Largest:
    """The largest id of some kind and where it was read (for the memory check's message)."""

    def __init__(self) -> None:
        self.value, self.path, self.line = -1, None, None

    def see(self, values: np.ndarray, lines: np.ndarray | None, path) -> None:
        if len(values):
            k = int(np.argmax(values))
            if int(values[k]) > self.value:
                self.value, self.path = int(values[k]), str(path)
                self.line = None if lines is None else int(lines[k])


def read_interaction_lines(path: Path, max_id: int = DEFAULT_MAX_ID, largest: tuple[Largest, Largest] | None = None
                           ) -> tuple[np.ndarray, np.ndarray, int]:
    """``uid item item ...`` lines -> (users, items) of every item token, and the largest user id
    seen (``-1`` when none; users with no items still count).  ``largest``: (users, items)
    trackers updated with the largest ids and their lines."""
    toks = parse_int_lines(read_bytes(path), path, max_id)
    line_idx = np.cumsum(toks.first) - 1
    line_users = toks.values[toks.first]
    items_mask = ~toks.first
    users = line_users[line_idx[items_mask]]
    max_user = int(line_users.max()) if len(line_users) else -1
    if largest is not None:
        largest[0].see(line_users, toks.lines[toks.first], path)
        largest[1].see(toks.values[items_mask], toks.lines[items_mask], path)
    return users, toks.values[items_mask], max_user


def read_list_file(path: Path, max_id: int = DEFAULT_MAX_ID, lines: list[int] | None = None
                   ) -> tuple[np.ndarray, list[str]]:
    """A KGAT ``*_list.txt`` file -> (remap ids, org ids), header skipped.

    The remap id is the last token (``org_id remap_id``); with the 3-column item-list header
    ``org_id remap_id freebase_id`` it is the middle one, or glued in front of the key when a
    row has two tokens (Yelp2018: ``abc 0abc``).
    """
    text = decode_lines(read_bytes(path))
    header = text[0].split() if text else []
    remap_col = header.index("remap_id") - len(header) if "remap_id" in header else -1
    ids: list[int] = []
    orgs: list[str] = []
    seen: dict[int, int] = {}
    lines_of: list[int] = []
    for k, ln in enumerate(text[1:], start=2):
        if not ln.strip():
            continue
        if remap_col == -1:
            parts = ln.rsplit(None, 1)
            org, rid = (parts[0].strip(), parts[1]) if len(parts) == 2 else ("", parts[0])
        else:
            toks = ln.split()
            if len(toks) >= len(header):
                rid, org = toks[remap_col], " ".join(toks[: len(toks) + remap_col])
            elif len(toks) == 2 and not is_decimal(toks[1]):
                org, glued = toks
                if glued.endswith(org) and is_decimal(glued[: len(glued) - len(org)]):
                    rid = glued[: len(glued) - len(org)]
                else:
                    m = _GLUED.match(glued)
                    if m is None:
                        raise DataError(f"no remap id in {glued[:30]!r}", str(path), k)
                    rid = m.group(0)
            else:
                rid, org = toks[-1], " ".join(toks[:-1])
        if not is_decimal(rid):
            raise DataError(f"remap id {rid[:30]!r} is not a non-negative integer", str(path), k)
        v = int(rid)
        if v > max_id:
            raise DataError(f"id {v} exceeds max_id={max_id}", str(path), k)
        if v in seen:
            raise DataError(f"remap id {v} appears twice (first on line {seen[v]})", str(path), k)
        seen[v] = k
        ids.append(v)
        lines_of.append(k)
        orgs.append(org)
    if lines is not None:
        lines.extend(lines_of)
    return np.asarray(ids, dtype=np.int64), orgs


def _raw_ids(n: int, listed: tuple[np.ndarray, list[str]] | None) -> np.ndarray | None:
    if listed is None:
        return None
    out = np.arange(n).astype(str).astype(object)
    ids, orgs = listed
    out[ids] = orgs
    return out.astype(str)


def read_kgat(path: str | Path, *, max_id: int = DEFAULT_MAX_ID, name: str | None = None,
              max_memory: float | None = None) -> Dataset:
    """Read a KGAT folder into a validated `Dataset` (see the module docstring)."""
    folder = Path(path)
    if not folder.is_dir():
        check_file(folder)  # a link loop, a FIFO, ... say so
        raise DataError("not a folder: the KGAT format is a folder with train.txt", str(folder))
    train_path = folder / "train.txt"
    if not present(train_path):
        shown = ", ".join(list_folder(folder)) or "nothing"
        raise DataError(f"missing file: a KGAT folder needs train.txt (the folder has: {shown})", str(train_path))
    warnings: list[str] = []
    stats: dict = {}
    big = {k: Largest() for k in ("user", "item", "entity", "relation")}

    tr_u, tr_i, tr_max_u = read_interaction_lines(train_path, max_id, (big["user"], big["item"]))
    test_path = folder / "test.txt"
    read = {"train.txt"}
    if present(test_path):
        te_u, te_i, te_max_u = read_interaction_lines(test_path, max_id, (big["user"], big["item"]))
        read.add("test.txt")
    else:
        te_u, te_i, te_max_u = np.zeros(0, np.int64), np.zeros(0, np.int64), -1
        warnings.append("no test.txt: the test set is empty")

    lists = {}
    for key in ("user", "item", "entity", "relation"):
        p = folder / f"{key}_list.txt"
        lists[key] = None
        if present(p):
            where: list[int] = []
            lists[key] = read_list_file(p, max_id, where)
            big[key].see(lists[key][0], np.asarray(where), p)
            read.add(p.name)

    n_users = max(tr_max_u, te_max_u, big["user"].value) + 1
    n_items = max(big["item"].value, -1) + 1

    def _max(*arrs: np.ndarray) -> int:
        return max([int(a.max()) for a in arrs if len(a)] + [-1])

    kg: KnowledgeGraph | None = None
    kg_path = next((folder / f for f in KG_FILES if present(folder / f)), None)
    feat_path = folder / "kg_feat.npz"
    sizes = lambda **kw: dict(n_users=n_users, n_items=n_items, n_interactions=len(tr_i) + len(te_i), **kw)  # noqa: E731
    for key in ("user", "item"):
        b = big[key]
        check_memory(b.path or train_path, b.line, f"{key} id {b.value}", sizes(), max_memory)
    if kg_path is not None:
        h, r, t, kg_lines = parse_triples(read_bytes(kg_path), kg_path, max_id, with_lines=True)
        read.add(kg_path.name)
        n_ent = max(_max(h, t) + 1, n_items, len(lists["entity"][0]) if lists["entity"] else 0,
                    big["entity"].value + 1)
        n_rel = max(_max(r) + 1, big["relation"].value + 1)
        big["entity"].see(np.maximum(h, t), kg_lines, kg_path)
        big["relation"].see(r, kg_lines, kg_path)
        for key in ("entity", "relation"):
            b = big[key]
            check_memory(b.path or kg_path, b.line, f"{key} id {b.value}", sizes(n_entities=n_ent, n_relations=n_rel,
                                                                      n_triples=len(h)), max_memory)
        kg = KnowledgeGraph(h, r, t, n_entities=n_ent, n_relations=n_rel,
                            relation_names=_raw_ids(n_rel, lists["relation"]))
    elif present(feat_path):
        kg, feat_stats, n_rows = read_kg_feat(feat_path, n_items, max_memory=max_memory)
        read.add(feat_path.name)
        stats.update(feat_stats)
        n_items = max(n_items, n_rows)
        kg.n_entities = max(kg.n_entities, n_items)
        warnings.append(
            f"KG read from kg_feat.npz: relation ids are lost; {kg.n_triples:,} (item, entity) links "
            f"under one relation 'linked' stand for {feat_stats['kg_feat_facts']:,} facts"
        )
    else:
        warnings.append("no kg_final.txt or kg_feat.npz: the dataset has no KG")
    if kg is not None:
        if lists["entity"] is not None:
            kg.n_entities = max(kg.n_entities, _max(lists["entity"][0]) + 1)
        kg.entity_ids = _raw_ids(kg.n_entities, lists["entity"])
    warnings += unread_files(folder, read)

    train = Interactions.from_pairs(tr_u, tr_i, n_users, n_items)
    test = Interactions.from_pairs(te_u, te_i, n_users, n_items)
    stats["duplicate_train_items"] = int(len(tr_i) - train.nnz)
    stats["duplicate_test_items"] = int(len(te_i) - test.nnz)
    ds = Dataset(
        name=name or folder.resolve().name,
        n_users=n_users,
        n_items=n_items,
        train=train,
        test=test,
        kg=kg,
        user_ids=_raw_ids(n_users, lists["user"]),
        item_ids=_raw_ids(n_items, lists["item"]),
        stats=stats,
        warnings=warnings,
        provenance={"format": "kgat", "split": {"method": "given"}, "kg_ids": "kgat" if kg is not None else None,
                    "weight": {"use": "ignore"}, "files": sorted(read)},
    )
    return finish(ds, source=str(train_path))
