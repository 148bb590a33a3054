"""The data options: one set of flags for every command that reads data.

`jnskr train`, `jnskr tune`, `jnskr evaluate`, `jnskr data import` and `jnskr data validate` take
the reader options of the ``data:`` config section as the same flags (``--interactions FILE``,
``--user-col NAME|POS``, ``--weight confidence``, ``--kg-ids items``, ``--split time``, ...),
defined once here.  A command decorated with `with_data_options` receives them as one dict
``options``; `data_section` turns that dict into the ``data:`` keys it sets (a config layer of
`train`/`tune`, checked with the config), `reader_options` into the keyword arguments of the
readers (checked by `jnskr.data.config.DataConfig`, one line per mistake).
"""

from __future__ import annotations

import functools
import inspect
from typing import Optional

import typer

from jnskr.errors import JnskrError

PANEL = "Data options (as `jnskr data validate` reads files)"
O = functools.partial(typer.Option, rich_help_panel=PANEL)  # noqa: E741
_FILE = "File name in the dataset folder"
_COL = "header name or 1-based position"

FORMAT_HELP = "kgat, recbole or tsv (default: detected from the files)"


def _params() -> dict:
    """name -> typer option, in the order `--help` lists them."""
    return dict(
        interactions=O(None, "--interactions", help=f"{_FILE}: the interactions (default interactions.tsv|csv)."),
        test=O(None, "--test", help=f"{_FILE}: a given test set (default test.tsv|csv)."),
        kg=O(None, "--kg", help=f"{_FILE}: KG triples head, relation, tail (default kg.tsv|csv)."),
        links=O(None, "--links", help=f"{_FILE}: item -> KG entity (default links.tsv|csv)."),
        names=O(None, "--names", help=f"{_FILE}: item -> name (default names.tsv|csv)."),
        user_col=O(None, "--user-col", help=f"User column: {_COL}."),
        item_col=O(None, "--item-col", help=f"Item column: {_COL}."),
        weight_col=O(None, "--weight-col", help=f"Weight/rating column: {_COL}."),
        timestamp_col=O(None, "--timestamp-col", help=f"Timestamp column: {_COL}."),
        head_col=O(None, "--head-col", help=f"KG head column: {_COL}."),
        relation_col=O(None, "--relation-col", help=f"KG relation column: {_COL}."),
        tail_col=O(None, "--tail-col", help=f"KG tail column: {_COL}."),
        link_item_col=O(None, "--link-item-col", help=f"Links file item column: {_COL}."),
        link_entity_col=O(None, "--link-entity-col", help=f"Links file entity column: {_COL}."),
        name_item_col=O(None, "--name-item-col", help=f"Names file item column: {_COL}."),
        name_col=O(None, "--name-col", help=f"Names file name column: {_COL}."),
        sep=O(None, "--sep", help="auto, tab, comma, semicolon, pipe, whitespace or a literal like '::'."),
        weight=O(None, "--weight", help="What the weight column means: ignore, threshold, confidence."),
        weight_threshold=O(None, "--weight-threshold", help="With --weight threshold: keep weight >= this."),
        confidence_norm=O(None, "--confidence-norm", help="With --weight confidence: mean (default: divide by the "
                          "train mean) or none (as given)."),
        confidence_transform=O(None, "--confidence-transform", help="With --weight confidence: none (default) or "
                               "log1p (log(1 + v) before the mean: skewed counts such as play counts)."),
        kg_ids=O(None, "--kg-ids", help="links (KG reaches items through the links file) or items (KG ids are item ids)."),
        link_only=O(None, "--link-only/--all-items", help="Keep only interactions of items linked to the KG."),
        split=O(None, "--split", help="Test split without a test file: ratio, leave_one_out, time."),
        test_ratio=O(None, "--test-ratio", help="Share of each user's items in test (ratio, time)."),
        test_seed=O(None, "--test-seed", help="Seed of the test split."),
        max_memory_gb=O(None, "--max-memory-gb", help="Memory limit of the load-time size check."),
    )


_TYPES = dict(weight_threshold=Optional[float], link_only=Optional[bool], test_ratio=Optional[float],
              test_seed=Optional[int], max_memory_gb=Optional[float])

#: flag -> its ``data:`` key (dotted); the rest have the same name there
_KEYS = dict(interactions="files.interactions", test="files.test", kg="files.kg", links="files.links",
             names="files.names", user_col="columns.user", item_col="columns.item", weight_col="columns.weight",
             timestamp_col="columns.timestamp", head_col="columns.head", relation_col="columns.relation",
             tail_col="columns.tail", link_item_col="columns.link_item", link_entity_col="columns.link_entity",
             name_item_col="columns.name_item", name_col="columns.name", sep="separator")

NAMES = tuple(_params())


def with_data_options(fn=None, *, seed_alias: bool = False):
    """Add the data flags to a command; it receives them as ``options`` (a dict, None: not given).
    `seed_alias`: ``--seed`` also names ``--test-seed`` (`data import`/`validate` had it; `train`
    and `tune` do not, where a seed is the model's)."""
    if fn is None:
        return lambda f: with_data_options(f, seed_alias=seed_alias)
    params = _params()
    if seed_alias:
        params["test_seed"] = O(None, "--test-seed", "--seed", help="Seed of the test split.")
    sig = inspect.signature(fn)
    own = [p for p in sig.parameters.values() if p.name != "options"]
    extra = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v, annotation=_TYPES.get(k, Optional[str]))
             for k, v in params.items()]

    @functools.wraps(fn)
    def wrapper(**kwargs):
        flags = {k: kwargs.pop(k) for k in params}
        return fn(**kwargs, options=flags)

    wrapper.__signature__ = sig.replace(parameters=own + extra)
    return wrapper


def given(options: dict | None) -> list[str]:
    """The flags of `options` that were given, as typed (``--interactions``, ...)."""
    return ["--" + k.replace("_", "-") for k, v in (options or {}).items() if v is not None]


def data_section(options: dict | None) -> dict:
    """The ``data:`` keys the given flags set, nested (``{"files": {"interactions": "x.tsv"}}``)."""
    out: dict = {}
    for k, v in (options or {}).items():
        if v is None:
            continue
        *path, last = _KEYS.get(k, k).split(".")
        cur = out
        for p in path:
            cur = cur.setdefault(p, {})
        cur[last] = v
    return out


def reader_options(options: dict | None) -> dict:
    """The given flags as reader keyword arguments, checked by `DataConfig` (one line per mistake)."""
    from pydantic import ValidationError

    from jnskr.data.config import DataConfig

    try:
        cfg = DataConfig(**data_section(options))
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(x) for x in e["loc"]) or "options"
        raise JnskrError(f"bad option {where}: {e['msg']}") from None
    return cfg.reader_options()
