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
  (``abc 0abc``): both layouts are read.

Counting as KGAT does: ``n_users`` = max user id + 1 over train, test and user_list;
``n_items`` = max item id + 1 over train, test and item_list (and kg_feat rows);
``n_entities`` = max(KG max id + 1, n_items, entity_list size); ``n_relations`` likewise.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from jnskr.data.dataset import Dataset, KnowledgeGraph
from jnskr.data.readers.common import (
    csr_from_pairs,
    DEFAULT_MAX_ID,
    decode_lines,
    parse_int_lines,
    parse_triples,
    read_bytes,
)
from jnskr.data.readers.kgfeat import read_kg_feat
from jnskr.data.validate import finish
from jnskr.errors import DataError

KG_FILES = ("kg_final.txt", "kg_final.txt.gz", "kg_final.txt.zip")


def read_interaction_lines(path: Path, max_id: int = DEFAULT_MAX_ID) -> tuple[np.ndarray, np.ndarray, int]:
    """``uid item item ...`` lines -> (users, items) of every item token, and the largest user id
    seen (``-1`` when none; users with no items still count)."""
    toks = parse_int_lines(read_bytes(path), path, max_id)
    line_idx = np.cumsum(toks.first) - 1
    line_users = toks.values[toks.first]
    items_mask = ~toks.first
    users = line_users[line_idx[items_mask]]
    max_user = int(line_users.max()) if len(line_users) else -1
    return users, toks.values[items_mask], max_user


def read_list_file(path: Path, max_id: int = DEFAULT_MAX_ID) -> tuple[np.ndarray, list[str]]:
    """A KGAT ``*_list.txt`` file -> (remap ids, org ids), header skipped.

    The remap id is the last token (``org_id remap_id``); with the 3-column item-list header
    ``org_id remap_id freebase_id`` it is the middle one, or glued in front of the key when a
    row has two tokens (Yelp2018: ``abc 0abc``).
    """
    lines = decode_lines(read_bytes(path))
    header = lines[0].split() if lines else []
    remap_col = header.index("remap_id") - len(header) if "remap_id" in header else -1
    ids: list[int] = []
    orgs: list[str] = []
    for k, ln in enumerate(lines[1:], start=2):
        if not ln.strip():
            continue
        if remap_col == -1:
            parts = ln.rsplit(None, 1)
            org, rid = (parts[0].strip(), parts[1]) if len(parts) == 2 else ("", parts[0])
        else:
            toks = ln.split()
            if len(toks) >= len(header):
                rid, org = toks[remap_col], " ".join(toks[: len(toks) + remap_col])
            elif len(toks) == 2 and not toks[1].isdigit():
                org, glued = toks
                if glued.endswith(org) and glued[: len(glued) - len(org)].isdigit():
                    rid = glued[: len(glued) - len(org)]
                else:
                    m = re.match(r"\d+", glued)
                    if m is None:
                        raise DataError(f"no remap id in {glued[:30]!r}", str(path), k)
                    rid = m.group(0)
            else:
                rid, org = toks[-1], " ".join(toks[:-1])
        if not rid.isdigit():
            raise DataError(f"remap id {rid[:30]!r} is not a non-negative integer", str(path), k)
        v = int(rid)
        if v > max_id:
            raise DataError(f"id {v} exceeds max_id={max_id}", str(path), k)
        ids.append(v)
        orgs.append(org)
    return np.asarray(ids, dtype=np.int64), orgs


def _raw_ids(n: int, listed: tuple[np.ndarray, list[str]] | None) -> np.ndarray | None:
    if listed is None:
        return None
    out = np.arange(n).astype(str).astype(object)
    ids, orgs = listed
    out[ids] = orgs
    return out.astype(str)


def read_kgat(path: str | Path, *, max_id: int = DEFAULT_MAX_ID, name: str | None = None) -> Dataset:
    """Read a KGAT folder into a validated `Dataset` (see the module docstring)."""
    folder = Path(path)
    if not folder.is_dir():
        raise DataError("not a folder: the KGAT format is a folder with train.txt", str(folder))
    train_path = folder / "train.txt"
    if not train_path.is_file():
        present = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise DataError(f"missing file: a KGAT folder needs train.txt (the folder has: {present})", str(train_path))
    warnings: list[str] = []
    stats: dict = {}

    tr_u, tr_i, tr_max_u = read_interaction_lines(train_path, max_id)
    test_path = folder / "test.txt"
    if test_path.is_file():
        te_u, te_i, te_max_u = read_interaction_lines(test_path, max_id)
    else:
        te_u, te_i, te_max_u = np.zeros(0, np.int64), np.zeros(0, np.int64), -1
        warnings.append("no test.txt: the test set is empty")

    lists = {}
    for key in ("user", "item", "entity", "relation"):
        p = folder / f"{key}_list.txt"
        lists[key] = read_list_file(p, max_id) if p.is_file() else None

    def _max(*arrs: np.ndarray) -> int:
        return max([int(a.max()) for a in arrs if len(a)] + [-1])

    n_users = max(tr_max_u, te_max_u, _max(lists["user"][0]) if lists["user"] else -1) + 1
    n_items = _max(tr_i, te_i, lists["item"][0] if lists["item"] else np.zeros(0, np.int64)) + 1

    kg: KnowledgeGraph | None = None
    kg_path = next((folder / f for f in KG_FILES if (folder / f).is_file()), None)
    feat_path = folder / "kg_feat.npz"
    if kg_path is not None:
        h, r, t = parse_triples(read_bytes(kg_path), kg_path, max_id)
        n_ent = max(_max(h, t) + 1, n_items, len(lists["entity"][0]) if lists["entity"] else 0,
                    _max(lists["entity"][0]) + 1 if lists["entity"] else 0)
        n_rel = max(_max(r) + 1, _max(lists["relation"][0]) + 1 if lists["relation"] else 0)
        kg = KnowledgeGraph(h, r, t, n_entities=n_ent, n_relations=n_rel,
                            relation_names=_raw_ids(n_rel, lists["relation"]))
    elif feat_path.is_file():
        kg, feat_stats, n_rows = read_kg_feat(feat_path, n_items)
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

    train = csr_from_pairs(tr_u, tr_i, n_users, n_items)
    test = csr_from_pairs(te_u, te_i, n_users, n_items)
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
    )
    return finish(ds)
