"""The data layer: readers, validation, registry and cache (docs/data.md).

`load_dataset(name_or_path, format, **options)` is the entry point; it returns a validated
`Dataset`.  `load_configured(cfg.data)` loads what a config's ``data:`` section names, with its
reader options.  `Dataset.from_frames` / `Dataset.from_csr` build one in memory.
"""

from jnskr.data.dataset import Dataset, Interactions, KnowledgeGraph
from jnskr.data.readers import detect_format, read_kgat, read_recbole, read_tsv
from jnskr.data.registry import load_configured, load_dataset

__all__ = [
    "Dataset",
    "Interactions",
    "KnowledgeGraph",
    "detect_format",
    "load_configured",
    "load_dataset",
    "read_kgat",
    "read_recbole",
    "read_tsv",
]
