"""Memory a configuration asks for, checked before anything of that size is allocated.

`jnskr.embed_dim=1000000000` would make every table a billion floats wide; building the model
would then fail deep inside torch (or the machine would start swapping).  `check_memory`
estimates, from the data's sizes and the config, the bytes training and evaluation allocate
(`jnskr.data.memory.estimate_bytes` for the tables: parameters, gradients and two optimiser
moments) and refuses with one line naming the key and its value when the estimate exceeds the
limit: `data.max_memory_gb`, else the device's memory (this machine's, or the GPU's).
"""

from __future__ import annotations

from dataclasses import dataclass

from jnskr.data.memory import TRAIN_COPIES, estimate_bytes, gb, machine_memory
from jnskr.errors import ConfigError
from jnskr.training.blocks import solve_chunk_rows

FLOAT = 4
#: d×d float64 Gram matrices an exact sweep holds at once (generous)
GRAMS = 8


@dataclass
class Sizes:
    """What the model's tables are sized by."""

    n_users: int
    n_items: int
    n_tails: int = 0  # KG tail entities with a table row
    n_relations: int = 0
    n_facts: int = 0


def embedding_part(key: str, d: int, sizes: Sizes, solver: str, layers: int = 0) -> tuple[str, int, int]:
    """(key, d, bytes) of embedding tables of width d over the data's rows (parameters, gradients,
    optimiser moments); `layers`: a propagated encoder's layer outputs kept for backward; under the
    als solver, the d×d float64 Grams and one chunk of row systems [rows, d, d] (+ its factor)."""
    s = sizes
    tables = estimate_bytes(s.n_users, s.n_items, s.n_items + s.n_tails, s.n_relations, embed_dim=d) \
        - estimate_bytes(s.n_users, s.n_items, s.n_items + s.n_tails, s.n_relations)
    if layers:
        tables += FLOAT * d * (s.n_users + s.n_items) * (layers + 1) * 2
    if solver == "als":
        tables += 8 * d * d * (GRAMS + 3 * solve_chunk_rows(d))
    return key, d, tables


def attention_part(key: str, a: int, d: int, sizes: Sizes) -> tuple[str, int, int]:
    """(key, a, bytes) of an attention MLP of width a over d-dimensional facts: its weights and
    their training copies, and two [facts, a] activations."""
    return key, a, TRAIN_COPIES * FLOAT * a * (3 * d + 2) + 2 * FLOAT * a * sizes.n_facts


def contributions(cfg, sizes: Sizes) -> list[tuple[str, object, int]]:
    """(config key, its value, bytes it accounts for) of the allocations a config sizes: the
    model's own (`Model.memory_parts`) and evaluation's."""
    s = sizes
    out: list[tuple[str, object, int]] = list(cfg.model_class().memory_parts(cfg, sizes))
    rows = min(cfg.eval.batch_size, max(s.n_users, 1))
    out.append(("eval.batch_size", cfg.eval.batch_size, rows * s.n_items * FLOAT * 2))
    out.append(("eval.k_max", cfg.eval.k_max, rows * cfg.eval.k_max * 9))
    return out


def memory_limit(cfg, device=None) -> tuple[int, str]:
    """(bytes, how the limit was set)."""
    if cfg.data.max_memory_gb is not None:
        return int(cfg.data.max_memory_gb * 1e9), "data.max_memory_gb"
    if device is not None and getattr(device, "type", "cpu") == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(device).total_memory), "the GPU's memory"
    return machine_memory(), "this machine's memory; data.max_memory_gb sets another limit"


def _with_default(cfg, key: str):
    """`cfg` with `key` (section.field) back at its class default."""
    section, _, name = key.partition(".")
    sec = getattr(cfg, section)
    default = type(sec).model_fields[name].default
    return cfg.model_copy(update={section: sec.model_copy(update={name: default})})


def culprit(cfg, sizes: Sizes) -> tuple[str, object]:
    """The key whose value, put back to its default, lowers the estimate the most."""
    parts = contributions(cfg, sizes)
    best = min(parts, key=lambda p: sum(b for _, _, b in contributions(_with_default(cfg, p[0]), sizes)))
    return best[0], best[1]


def check_memory(cfg, sizes: Sizes, device=None, where: str | None = None) -> int:
    """Raise `ConfigError` when training `cfg` on data of `sizes` would need more memory than
    the limit (`memory_limit`), naming the key responsible (`culprit`).  -> the estimate in bytes."""
    total = sum(b for _, _, b in contributions(cfg, sizes))
    limit, why = memory_limit(cfg, device)
    if limit and total > limit:
        key, value = culprit(cfg, sizes)
        raise ConfigError(
            f"{where + ': ' if where else ''}{key}={value}: training would need about {gb(total)} for "
            f"{sizes.n_users:,} users, {sizes.n_items:,} items and {sizes.n_tails:,} KG entities, over the "
            f"{gb(limit)} memory limit ({why})")
    return total
