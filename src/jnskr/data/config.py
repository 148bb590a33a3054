"""The `data:` section of a run's configuration (how a dataset is read, split and used).

Every key is strict (unknown keys and wrong types are errors) and range-checked.  The reader
keys (`DataConfig.reader_options`) are passed to `jnskr.data.load_dataset`; a key that does not
apply to the dataset's format is an error there.  docs/data.md shows them at work.

Where the dataset comes from: ``dataset`` (a registered or imported name) or ``path`` (a
folder or file) with ``format`` (``kgat``, ``recbole``, ``tsv``; detected when null).

Reading delimited files (``format: tsv``; RecBole takes ``columns.weight`` /
``columns.timestamp`` too):

* ``files.{interactions,test,kg,links,names}``: file names in the folder (default
  ``<role>.tsv`` or ``.csv``);
* ``columns.*``: a header name or a 1-based position per column: ``user``, ``item``,
  ``weight``, ``timestamp`` (interaction files), ``head``, ``relation``, ``tail`` (KG),
  ``link_item``, ``link_entity`` (links), ``name_item``, ``name`` (names);
* ``separator``: ``auto``, ``tab``, ``comma``, ``semicolon``, ``pipe``, ``whitespace`` or the
  literal separator (``"::"``).

What the data means:

* ``weight``: ``ignore`` (every row a positive), ``threshold`` (keep rows with weight >=
  ``weight_threshold``) or ``confidence`` (keep every row; the weights become
  ``Interactions.values``, the per-pair positive weight of training);
* ``confidence_transform``: ``log1p`` replaces confidence values v by log(1 + v) before the
  normalisation (skewed counts such as play counts); ``none`` (default) keeps them;
* ``confidence_norm``: ``mean`` (default) divides confidence values by their mean over the training
  pairs, so the average positive weighs 1 as without confidence; ``none`` keeps them as given;
* ``kg_ids``: how the KG reaches items in delimited and RecBole files: ``links`` (through the
  links file), ``items`` (the KG's entity ids are item ids), null (``links`` when a links file
  exists; a KG without one is an error);
* ``link_only``: keep only interactions of items linked to a KG entity;
* ``split`` / ``test_ratio`` / ``test_seed``: the test split of files without a given test set
  (``ratio``: a seeded ``test_ratio`` share per user; ``leave_one_out``: one item per user, the
  latest when there are timestamps; ``time``: each user's latest ``test_ratio`` share);
* ``max_memory_gb``: the memory limit of the load-time size check (default: this machine's
  memory).

How the model uses it: ``use_kg``, ``kg_heads``, ``inverse_relations``, ``valid_ratio`` and
``split_seed`` (the validation hold-out of the train set).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors; assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataFiles(Strict):
    """File names (relative to the dataset folder) of delimited data; null: ``<role>.tsv|csv``."""

    interactions: str | None = Field(None, min_length=1, description="the interactions (user, item[, weight, time])")
    test: str | None = Field(None, min_length=1, description="a given test set, same columns as interactions")
    kg: str | None = Field(None, min_length=1, description="KG triples (head, relation, tail)")
    links: str | None = Field(None, min_length=1, description="item -> KG entity (item, entity)")
    names: str | None = Field(None, min_length=1, description="item -> display name (item, name)")


Col = str | int | None


class DataColumns(Strict):
    """Columns of delimited data: a header name or a 1-based position; null: a known header name,
    else the usual position (user 1, item 2; head 1, relation 2, tail 3; item 1, entity 2; ...)."""

    user: Col = None
    item: Col = None
    weight: Col = None  # a rating / play count / weight column, used as data.weight says
    timestamp: Col = None  # numbers or ISO-8601 dates; used by split: time and leave_one_out
    head: Col = None
    relation: Col = None
    tail: Col = None
    link_item: Col = None
    link_entity: Col = None
    name_item: Col = None
    name: Col = None

    @field_validator("*")
    @classmethod
    def _column(cls, v):
        if isinstance(v, bool):
            raise ValueError("a column is a header name or a 1-based position")
        if isinstance(v, int) and v < 1:
            raise ValueError("a column position starts at 1")
        if isinstance(v, str) and not v.strip():
            raise ValueError("a column name cannot be empty")
        return v


SEPARATOR_NAMES = ("auto", "tab", "comma", "semicolon", "pipe", "whitespace")


class DataConfig(Strict):
    dataset: str | None = "ml-100k"  # a registered or imported dataset name
    path: str | None = None  # a dataset folder or file (wins over dataset)
    format: Literal["kgat", "recbole", "tsv"] | None = None  # null: detected from the files
    use_kg: bool = True  # false: ignore the dataset's KG (CF-only ablation)
    kg_heads: Literal["all_items", "trained_items"] = "all_items"
    inverse_relations: Literal["shared", "separate"] = "shared"
    valid_ratio: float = Field(0.1, ge=0.0, lt=1.0)  # validation hold-out share of each user's train items
    split_seed: int = 2020  # seed of the validation hold-out
    files: DataFiles = Field(default_factory=DataFiles)  # file names of delimited data
    columns: DataColumns = Field(default_factory=DataColumns)  # columns of delimited data
    separator: str = "auto"  # auto | tab | comma | semicolon | pipe | whitespace | a literal like "::"
    weight: Literal["ignore", "threshold", "confidence"] = "ignore"  # what a weight column means
    weight_threshold: float | None = None  # weight: threshold keeps rows with weight >= this
    confidence_norm: Literal["mean", "none"] = "mean"  # weight: confidence -- divide by the train mean, or not
    confidence_transform: Literal["none", "log1p"] = "none"  # weight: confidence -- log(1 + v) first (skewed counts)
    kg_ids: Literal["links", "items"] | None = None  # how KG entities reach items (see above)
    link_only: bool = False  # keep only interactions of items linked to a KG entity
    split: Literal["ratio", "leave_one_out", "time"] = "ratio"  # test split of files without one
    test_ratio: float = Field(0.2, gt=0.0, lt=1.0)  # share of each user's items in test (ratio, time)
    test_seed: int = 2020  # seed of the test split
    max_memory_gb: float | None = Field(None, gt=0.0)  # memory limit of the load-time size check

    @field_validator("separator")
    @classmethod
    def _separator(cls, v: str) -> str:
        if v in SEPARATOR_NAMES:
            return v
        if not 1 <= len(v) <= 3 or any(c.isalnum() or c in "\"'\n\r" for c in v):
            raise ValueError(f"one of {', '.join(SEPARATOR_NAMES)}, or 1-3 characters that are not letters, digits, "
                             f"quotes or line breaks")
        return v

    @field_validator("weight_threshold")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def _threshold_needs_value(self) -> "DataConfig":
        if self.weight == "threshold" and self.weight_threshold is None:
            raise ValueError("weight: threshold needs weight_threshold")
        return self

    def reader_options(self) -> dict:
        """The reader keyword arguments these settings ask for (defaults left out, so that a
        format that does not take a key only hears about it when it is set)."""
        out: dict = {}
        files = {k: v for k, v in self.files.model_dump().items() if v is not None}
        columns = {k: v for k, v in self.columns.model_dump().items() if v is not None}
        if files:
            out["files"] = files
        if columns:
            out["columns"] = columns
        if self.separator != "auto":
            out["separator"] = self.separator
        if self.weight != "ignore":
            out["weight"] = self.weight
        if self.weight_threshold is not None:
            out["weight_threshold"] = self.weight_threshold
        if self.confidence_norm != "mean":
            out["confidence_norm"] = self.confidence_norm
        if self.confidence_transform != "none":
            out["confidence_transform"] = self.confidence_transform
        if self.kg_ids is not None:
            out["kg_ids"] = self.kg_ids
        if self.link_only:
            out["link_only"] = True
        if self.split != "ratio":
            out["split"] = self.split
        if self.test_ratio != 0.2:
            out["test_ratio"] = self.test_ratio
        if self.test_seed != 2020:
            out["seed"] = self.test_seed
        if self.max_memory_gb is not None:
            out["max_memory"] = self.max_memory_gb * 1e9
        return out
