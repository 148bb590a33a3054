"""Memory estimates, checked before any table sized by the data is allocated.

A KGAT file numbers users, items and entities itself; one id of 99,999,999 makes every table
100 million rows long.  The readers call `check_memory` as soon as the sizes are known (before
the CSR arrays, the raw-id tables or anything else of that size exist) and refuse, with one line
naming the file, the line and the value, when `estimate_bytes` exceeds the memory limit.

`estimate_bytes` is public: the config-side check calls it with the real embedding size.
"""

from __future__ import annotations

import os
from pathlib import Path

from jnskr.errors import DataError

#: bytes per row the data layer keeps or builds while loading (int64 CSR offsets of train and
#: test, counts, dense-id maps, the item-KG offsets and masks; measured from the readers' code)
PER_USER = 40
PER_ITEM = 56
PER_ENTITY = 24
PER_INTERACTION = 56
PER_TRIPLE = 96
#: a numpy unicode string takes 4 bytes per character
PER_CHAR = 4
#: embedding size the data-side check assumes (the default of ``jnskr.embed_dim``)
DEFAULT_EMBED_DIM = 64
#: float32 parameters + gradients + two optimizer moments
TRAIN_COPIES = 4


def estimate_bytes(n_users: int, n_items: int, n_entities: int = 0, n_relations: int = 0,
                   n_interactions: int = 0, n_triples: int = 0, *, id_chars: int = 0,
                   embed_dim: int = 0) -> int:
    """Bytes needed to hold a dataset of these sizes and, with ``embed_dim`` > 0, to train
    float32 embeddings of every user, item, entity and relation (parameters, gradients and two
    optimizer moments).  ``id_chars``: the longest raw id when raw-id string tables are built
    (0: none).  An estimate from per-row costs, not a measurement; never negative."""
    n_users, n_items, n_entities, n_relations = (max(int(x), 0) for x in (n_users, n_items, n_entities, n_relations))
    rows = n_users + n_items + max(n_entities - n_items, 0)
    data = (PER_USER * n_users + PER_ITEM * n_items + PER_ENTITY * max(n_entities, 0)
            + PER_INTERACTION * max(int(n_interactions), 0) + PER_TRIPLE * max(int(n_triples), 0)
            + PER_CHAR * max(int(id_chars), 0) * rows)
    model = TRAIN_COPIES * 4 * max(int(embed_dim), 0) * (rows + n_relations)
    return int(data + model)


def machine_memory() -> int:
    """Physical memory in bytes, or the cgroup limit when that is smaller (0 when unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 0
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(f).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < (total or 1 << 62):
            total = int(text)
    return int(total)


def gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB"


def check_memory(path: str | Path, line: int | None, what: str, sizes: dict, max_memory: float | None = None) -> None:
    """Raise `DataError` at ``path:line`` when a dataset of ``sizes`` (`estimate_bytes`
    keywords) would not fit: ``what`` names the value responsible ("user id 99999999").

    ``max_memory``: the limit in bytes (default: `machine_memory`; no check when unknown)."""
    limit = max_memory if max_memory is not None else machine_memory()
    if not limit:
        return
    need = estimate_bytes(**sizes, embed_dim=DEFAULT_EMBED_DIM)
    if need <= limit:
        return
    data = estimate_bytes(**sizes)
    shown = " and ".join(f"{sizes[k]:,} {k.removeprefix('n_')}" for k in ("n_users", "n_items", "n_entities")
                         if sizes.get(k))
    raise DataError(
        f"{what} means {shown}: about {gb(need)} ({gb(data)} of data arrays, the rest embeddings of size "
        f"{DEFAULT_EMBED_DIM} to train), over the {gb(limit)} memory limit; ids must be dense 0..n-1 "
        f"(raise data.max_memory_gb if these sizes are right)", str(path), line)
