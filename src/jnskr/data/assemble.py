"""Build a `Dataset` from string columns: the common back end of the TSV/CSV and RecBole readers
and of `Dataset.from_frames` / `Dataset.from_csr`.

Inputs are raw ids as strings (`Pairs`, `Triples`, `Links`, `Names`) and the reader options
(`Options`, the ``data.*`` keys).  The steps, in order:

1. **weight** (``data.weight``): ``ignore`` (every row is a positive; a weight column present is
   named in a warning), ``threshold`` (keep rows with weight >= ``weight_threshold``; train and
   given test alike) or ``confidence`` (keep every row; the weights become
   `Interactions.values`, a pair listed twice gets the sum; negative weights are errors).
   ``confidence_transform``: ``log1p`` replaces each value v by log(1 + v) first (skewed counts:
   a few pairs with thousands of plays would otherwise outweigh everything); ``none`` (default)
   keeps them.  ``confidence_norm``: ``mean`` (default) then divides the values by their mean over
   the training pairs (after the split; a given test set by the same number), so the average
   positive weighs 1 as without confidence; ``none`` keeps them as given.
2. **KG ids** (``data.kg_ids``): the KG reaches items only through a links table (item ->
   entity) or, with ``kg_ids: items``, because its entity ids *are* item ids.  A KG with
   neither is a `DataError`: counting overlaps cannot tell a real join from a coincidence.
3. ``link_only``: keep only interactions of items linked to an entity that occurs in the KG.
4. raw ids numbered densely (`jnskr.data.parse.dense_ids`), the memory estimate checked.
5. the split: a given test set, else ``data.split`` (`jnskr.data.split.split_pairs`); a split
   that leaves the test set empty (no user with 2+ items) is a `DataError`.
6. the KG numbered (`jnskr.data.parse.build_kg`), names attached, `finish` run.

What was done is recorded in ``Dataset.provenance`` (``split``, ``kg_ids``, ``weight``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from jnskr.data.arrays import Interactions
from jnskr.data.memory import check_memory
from jnskr.data.parse import build_kg, dense_ids
from jnskr.data.split import METHODS, split_pairs
from jnskr.data.validate import finish
from jnskr.errors import DataError

WEIGHT_USES = ("ignore", "threshold", "confidence")
CONFIDENCE_NORMS = ("mean", "none")
CONFIDENCE_TRANSFORMS = ("none", "log1p")
KG_IDS = ("links", "items")


@dataclass
class Pairs:
    """(user, item) rows as raw string ids, with optional weights and timestamps (float64)."""

    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray | None = None
    times: np.ndarray | None = None
    source: str = "interactions"
    lines: np.ndarray | None = None  # 1-based line of each row, for errors
    weight_name: str | None = None  # the weight column's name, for messages

    def keep(self, mask: np.ndarray) -> "Pairs":
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return Pairs(self.users[mask], self.items[mask], pick(self.weights), pick(self.times), self.source,
                     pick(self.lines), self.weight_name)

    def line(self, k: int) -> int | None:
        return None if self.lines is None else int(self.lines[k])


@dataclass
class Triples:
    heads: np.ndarray
    relations: np.ndarray
    tails: np.ndarray
    source: str = "kg"


@dataclass
class Links:
    items: np.ndarray
    entities: np.ndarray
    source: str = "links"
    lines: np.ndarray | None = None


@dataclass
class Names:
    items: np.ndarray
    names: np.ndarray
    source: str = "names"


@dataclass
class Options:
    """The reader options of the ``data:`` config section (see `jnskr.data.config.DataConfig`)."""

    weight: str = "ignore"
    weight_threshold: float | None = None
    kg_ids: str | None = None
    split: str = "ratio"
    test_ratio: float = 0.2
    seed: int = 2020
    link_only: bool = False
    max_memory: float | None = None
    confidence_norm: str = "mean"
    confidence_transform: str = "none"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.weight not in WEIGHT_USES:
            raise DataError(f"weight must be one of {', '.join(WEIGHT_USES)}, not {self.weight!r}")
        if self.weight == "threshold" and self.weight_threshold is None:
            raise DataError("weight 'threshold' needs a weight_threshold (data.weight_threshold)")
        if self.confidence_norm not in CONFIDENCE_NORMS:
            raise DataError(f"confidence_norm must be one of {', '.join(CONFIDENCE_NORMS)}, not "
                            f"{self.confidence_norm!r}")
        if self.confidence_transform not in CONFIDENCE_TRANSFORMS:
            raise DataError(f"confidence_transform must be one of {', '.join(CONFIDENCE_TRANSFORMS)}, not "
                            f"{self.confidence_transform!r}")
        if self.kg_ids not in (None,) + KG_IDS:
            raise DataError(f"kg_ids must be one of {', '.join(KG_IDS)}, not {self.kg_ids!r}")
        if self.split not in METHODS:
            raise DataError(f"split must be one of {', '.join(METHODS)}, not {self.split!r}")
        if not 0.0 < float(self.test_ratio) < 1.0:
            raise DataError(f"test_ratio must be between 0 and 1 (exclusive), not {self.test_ratio}")


def no_link_error(kg_source: str, links_hint: str) -> DataError:
    """The one-line error for a KG that cannot reach the items."""
    return DataError(
        f"a KG reaches the items only through a links file (item -> entity), expected {links_hint}, or when "
        f"its head ids are item ids (data.kg_ids: items, --kg-ids items); neither is given", kg_source)


def transform_log1p(train: Interactions, test: Interactions, info: dict):
    """Confidence values v replaced by log(1 + v), train and test alike.  -> (train, test); `info`
    (the weight provenance) records the transform."""
    info["transform"] = "log1p"
    tf = lambda x: x if x.values is None else replace(x, values=np.log1p(x.values))  # noqa: E731
    return tf(train), tf(test)


def normalise_mean(train: Interactions, test: Interactions, info: dict, warnings: list[str]):
    """Confidence values divided by their mean over the training pairs (`test`'s by the same
    number): the average positive weighs 1, as without confidence, against the same negative
    weights.  -> (train, test); `info` (the weight provenance) records the divisor."""
    info["norm"] = "mean"
    mean = float(train.values.mean()) if train.values is not None and train.nnz else 0.0
    if not mean > 0:
        warnings.append("confidence values are all 0: not normalised (data.confidence_norm)")
        return train, test
    info["divided_by"] = mean
    scale = lambda x: x if x.values is None else replace(x, values=x.values / mean)  # noqa: E731
    return scale(train), scale(test)


def apply_weight(p: Pairs, opts: Options, warnings: list[str]) -> tuple[Pairs, np.ndarray | None, dict]:
    """-> (rows kept, values or None, provenance of the weight)."""
    if opts.weight == "ignore":
        if p.weight_name is not None:
            what = p.weight_name if p.weight_name.startswith("the ") else f"column {p.weight_name!r} of {p.source}"
            warnings.append(f"{what} ignored: every row counts as a positive (weight threshold or confidence "
                            f"uses it: data.weight, --weight)")
        return p, None, {"use": "ignore"}
    if p.weights is None:
        raise DataError(f"data.weight: {opts.weight} needs a weight column (none found; name it with "
                        f"data.columns.weight / --weight-col)", p.source)
    info = {"use": opts.weight, "column": p.weight_name}
    if opts.weight == "threshold":
        keep = p.weights >= float(opts.weight_threshold)
        info["threshold"] = float(opts.weight_threshold)
        info["dropped"] = int(np.count_nonzero(~keep))
        return p.keep(keep), None, info
    bad = np.flatnonzero(p.weights < 0)
    if len(bad):
        k = int(bad[0])
        raise DataError(f"negative weight {p.weights[k]:g}: a confidence must be >= 0", p.source, p.line(k))
    return p, p.weights, info


def item_entities(item_ids: np.ndarray, links: Links | None, kg_ids: str | None, warnings: list[str]) -> np.ndarray:
    """Raw entity id of every item ("" when unlinked)."""
    if links is None:
        return np.asarray(item_ids, dtype=str)  # kg_ids == "items"
    order = np.argsort(links.items, kind="stable")
    li, le = links.items[order], links.entities[order]
    dup = np.flatnonzero(li[1:] == li[:-1])
    for k in dup:
        if le[k] != le[k + 1]:
            line = None if links.lines is None else int(links.lines[order[k + 1]])
            raise DataError(f"item {str(li[k])!r} is linked to two entities ({str(le[k])!r}, {str(le[k + 1])!r})",
                                links.source, line)
    pos = np.searchsorted(li, item_ids).clip(max=max(len(li) - 1, 0))
    found = (li[pos] == item_ids) if len(li) else np.zeros(len(item_ids), bool)
    out = np.where(found, le[pos] if len(le) else "", "").astype(str)
    stray = len(np.setdiff1d(li, item_ids))
    if stray:
        warnings.append(f"{stray:,} rows of {links.source} name items without interactions (ignored)")
    return out


def _number(raw: np.ndarray, order: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(id vocabulary, dense code of each raw id)."""
    if order is None:
        return dense_ids(raw)
    order = np.asarray(order, dtype=str)
    sorter = np.argsort(order, kind="stable")
    pos = np.searchsorted(order[sorter], raw).clip(max=max(len(order) - 1, 0))
    return order, sorter[pos].astype(np.int64)


def assemble(cls, *, name: str, train: Pairs, test: Pairs | None = None, kg: Triples | None = None,
             links: Links | None = None, names: Names | None = None, opts: Options | None = None,
             warnings: list[str] | None = None, provenance: dict | None = None, source: str | None = None,
             user_order: np.ndarray | None = None, item_order: np.ndarray | None = None):
    """Build and validate a ``cls`` (`jnskr.data.dataset.Dataset`) from raw string columns.

    ``user_order`` / ``item_order``: fixed id vocabularies (unique raw ids, dense id = position;
    users or items without interactions kept); default: the ids present, `dense_ids` order."""
    opts = opts or Options()
    warnings = list(warnings or [])
    prov = dict(provenance or {})
    source = source or train.source
    train, tr_vals, winfo = apply_weight(train, opts, warnings)
    te_vals = None
    if test is not None and not (opts.weight == "confidence" and test.weights is None):
        test, te_vals, _ = apply_weight(test, opts, [])  # a test set without weights: no values
    prov["weight"] = winfo
    if kg is not None:
        if links is not None and opts.kg_ids == "items":
            raise DataError("kg_ids: items and a links file exclude each other (the links say which entity each "
                            "item is)", links.source)
        if links is None and opts.kg_ids != "items":
            raise no_link_error(kg.source, "a links table")
        prov["kg_ids"] = "links" if links is not None else "items"
    elif opts.link_only:
        raise DataError("link_only needs a KG and a links file", source)
    entities = np.union1d(kg.heads, kg.tails) if kg is not None else np.zeros(0, str)
    if opts.link_only:
        ok_items = links.items[np.isin(links.entities, entities)] if links is not None else entities
        n_before = len(train.users) + (len(test.users) if test is not None else 0)
        m = np.isin(train.items, ok_items)
        train, tr_vals = train.keep(m), None if tr_vals is None else tr_vals[m]
        if test is not None:
            m = np.isin(test.items, ok_items)
            test, te_vals = test.keep(m), None if te_vals is None else te_vals[m]
        dropped = n_before - len(train.users) - (len(test.users) if test is not None else 0)
        if dropped:
            warnings.append(f"link_only: {dropped:,} interactions of items without a KG entity dropped")
    if len(train.users) == 0:
        cut = " left after the weight threshold / link_only" if opts.weight == "threshold" or opts.link_only else ""
        raise DataError(f"no training interactions{cut}", source)
    n_tr = len(train.users)
    te_users = test.users if test is not None else np.zeros(0, str)
    te_items = test.items if test is not None else np.zeros(0, str)
    user_ids, ucode = _number(np.concatenate([train.users, te_users]), user_order)
    item_ids, icode = _number(np.concatenate([train.items, te_items]), item_order)
    n_users, n_items = len(user_ids), len(item_ids)
    n_ent = 0 if kg is None else n_items + len(entities)
    check_memory(source, None, "the data",
                 dict(n_users=n_users, n_items=n_items, n_entities=n_ent, n_interactions=len(ucode),
                      n_triples=0 if kg is None else len(kg.heads)), opts.max_memory)
    stats: dict = {}
    if test is not None:
        train_x = Interactions.from_pairs(ucode[:n_tr], icode[:n_tr], n_users, n_items, tr_vals)
        test_x = Interactions.from_pairs(ucode[n_tr:], icode[n_tr:], n_users, n_items, te_vals)
        stats["duplicate_train_items"] = int(n_tr - train_x.nnz)
        stats["duplicate_test_items"] = int(len(te_users) - test_x.nnz)
        prov["split"] = {"method": "given"}
    else:
        if opts.split == "time" and train.times is None:
            raise DataError("data.split: time needs a timestamp column (none found; name it with "
                            "data.columns.timestamp / --timestamp-col)", source)
        train_x, test_x, prov["split"] = split_pairs(
            ucode, icode, n_users, n_items, method=opts.split, test_ratio=opts.test_ratio, seed=opts.seed,
            values=tr_vals, times=train.times)
        stats["duplicate_train_items"] = int(n_tr - train_x.nnz - test_x.nnz)
        if test_x.nnz == 0:
            raise DataError(f"the {opts.split} split leaves the test set empty: no user has 2 or more items (a "
                            "user's only item stays in train); give a test set (--test FILE, data.files.test, "
                            "test=...) or more interactions per user", source)
    if opts.weight == "confidence" and opts.confidence_transform == "log1p":
        train_x, test_x = transform_log1p(train_x, test_x, prov["weight"])
    if opts.weight == "confidence" and opts.confidence_norm == "mean":
        train_x, test_x = normalise_mean(train_x, test_x, prov["weight"], warnings)
    graph = None
    if kg is not None:
        item_entity = item_entities(item_ids, links, opts.kg_ids, warnings)
        graph, shared = build_kg(kg.heads, kg.relations, kg.tails, item_entity)
        if shared:
            warnings.append(f"{shared} items link to an entity already linked to another item")
        if links is not None:
            linked = item_entity[item_entity != ""]
            absent = int(np.count_nonzero(~np.isin(linked, entities)))
            if absent:
                warnings.append(f"{absent:,} items are linked to an entity that has no KG fact")
    item_names = None
    if names is not None:
        order = np.argsort(names.items, kind="stable")
        ni, nn = names.items[order], names.names[order]
        pos = np.searchsorted(ni, item_ids).clip(max=max(len(ni) - 1, 0))
        found = (ni[pos] == item_ids) if len(ni) else np.zeros(n_items, bool)
        item_names = np.where(found, nn[pos] if len(nn) else "", "").astype(str)
    ds = cls(name=name, n_users=n_users, n_items=n_items, train=train_x, test=test_x, kg=graph,
             user_ids=user_ids, item_ids=item_ids, item_names=item_names, stats=stats, warnings=warnings,
             provenance=prov)
    return finish(ds, source=source)
