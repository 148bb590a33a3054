"""Labelled triples: reading ``train.txt`` / ``valid.txt`` / ``test.txt`` into dense ids.

Each file holds one ``head<TAB>relation<TAB>tail`` line per triple, with string labels (the
ConvE / PyKEEN layout).  Blank lines are skipped; anything else that is not three non-empty
tab-separated fields is a one-line `DataError` naming ``file:line: problem``.  Entities are
numbered over all three files in sorted label order (so a test entity unseen in train still has
an id: it can be ranked, or dropped, see `jnskr.kg.evaluate`); relations are those of train, in
sorted order, and a valid/test triple with a relation that train never uses is an error.
Duplicate training triples are dropped (the whole-data loss needs unique positives).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from jnskr.errors import DataError

__all__ = ["SPLITS", "KGData", "read_triples_file", "read_triples_dir"]

log = logging.getLogger("jnskr")

SPLITS = ("train", "valid", "test")


@dataclass
class KGData:
    """A KG completion dataset with dense ids (position in `entity_ids` / `relation_ids`)."""

    name: str
    entity_ids: list[str]
    relation_ids: list[str]
    train: Tensor  # [n, 3] int64 (head, relation, tail)
    valid: Tensor
    test: Tensor
    source: str = ""
    fingerprint: str = ""
    notes: dict = field(default_factory=dict)

    @property
    def n_entities(self) -> int:
        return len(self.entity_ids)

    @property
    def n_relations(self) -> int:
        return len(self.relation_ids)

    def split(self, name: str) -> Tensor:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}")
        return getattr(self, name)

    def seen_in_train(self) -> Tensor:
        """[n_entities] bool: the entity occurs in a training triple (as head or tail)."""
        seen = torch.zeros(self.n_entities, dtype=torch.bool)
        seen[self.train[:, 0]] = True
        seen[self.train[:, 2]] = True
        return seen

    def stats(self) -> dict:
        seen = self.seen_in_train()
        out = {"entities": self.n_entities, "relations": self.n_relations,
               "entities_seen_in_train": int(seen.sum())}
        for s in SPLITS:
            t = self.split(s)
            out[f"{s}_triples"] = int(t.shape[0])
            if s != "train":
                out[f"{s}_triples_with_unseen_entity"] = int((~(seen[t[:, 0]] & seen[t[:, 2]])).sum())
        return out


def read_triples_file(path: str | Path) -> list[tuple[int, str, str, str]]:
    """[(line number, head, relation, tail)] of one file; DataError on the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise DataError("missing file (a KG folder holds train.txt, valid.txt and test.txt)", str(path))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 text (byte {exc.start})", str(path), line) from None
    out = []
    names = ("head", "relation", "tail")
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataError(f"expected 3 tab-separated fields (head, relation, tail), found {len(fields)}",
                            str(path), no)
        fields = [f.strip() for f in fields]
        for n, f in zip(names, fields):
            if not f:
                raise DataError(f"empty {n} label", str(path), no)
        out.append((no, fields[0], fields[1], fields[2]))
    return out


def read_triples_dir(folder: str | Path, name: str | None = None) -> KGData:
    """Read ``folder/{train,valid,test}.txt`` into a `KGData` (see the module docstring)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError("not a folder (expected one holding train.txt, valid.txt and test.txt)", str(folder))
    paths = {s: folder / f"{s}.txt" for s in SPLITS}
    rows = {s: read_triples_file(p) for s, p in paths.items()}
    if not rows["train"]:
        raise DataError("no triples", str(paths["train"]))
    relations = sorted({r for _, _, r, _ in rows["train"]})
    rel_index = {r: i for i, r in enumerate(relations)}
    for s in ("valid", "test"):
        for no, _, r, _ in rows[s]:
            if r not in rel_index:
                raise DataError(f"relation {r!r} never occurs in train.txt (it cannot be scored)", str(paths[s]), no)
    entities = sorted({e for s in SPLITS for _, h, _, t in rows[s] for e in (h, t)})
    ent_index = {e: i for i, e in enumerate(entities)}

    def ids(s: str) -> Tensor:
        if not rows[s]:
            return torch.zeros(0, 3, dtype=torch.long)
        return torch.tensor([(ent_index[h], rel_index[r], ent_index[t]) for _, h, r, t in rows[s]], dtype=torch.long)

    train = ids("train")
    unique = torch.unique(train, dim=0)
    notes = {}
    if unique.shape[0] != train.shape[0]:
        notes["duplicate_train_triples_dropped"] = int(train.shape[0] - unique.shape[0])
        log.warning("%s: %d duplicate training triple(s) dropped", paths["train"], notes["duplicate_train_triples_dropped"])
        train = _first_occurrences(train)
    digest = hashlib.sha256()
    for s in SPLITS:
        digest.update(s.encode() + b"\0" + paths[s].read_bytes() + b"\0")
    return KGData(name or folder.resolve().name, entities, relations, train, ids("valid"), ids("test"),
                  source=str(folder.resolve()), fingerprint=digest.hexdigest(), notes=notes)


def _first_occurrences(t: Tensor) -> Tensor:
    """Rows of `t` without repeats, in the order of their first occurrence."""
    seen: set[tuple[int, int, int]] = set()
    keep = []
    for i, row in enumerate(t.tolist()):
        key = tuple(row)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return t[torch.tensor(keep, dtype=torch.long)]
