"""The data layer: readers, validation, registry and cache.

`load_dataset(name_or_path)` is the entry point; it returns a validated `Dataset`.
"""

from jnskr.data.dataset import Dataset, Interactions, KnowledgeGraph
from jnskr.data.readers import detect_format, read_kgat, read_recbole, read_tsv
from jnskr.data.registry import load_dataset

__all__ = [
    "Dataset",
    "Interactions",
    "KnowledgeGraph",
    "detect_format",
    "load_dataset",
    "read_kgat",
    "read_recbole",
    "read_tsv",
]
