"""Dropout whose masks are keyed by (seed, epoch, id, stream), not by a global RNG stream.

The mask of an item depends only on the seed, the epoch, the item id and the stream (which
of the three masks of docs/spec.md §2.4), so it is the same whatever batch, rank or process count
the item lands in.  Uniforms come from a counter-based hash (murmur3 finaliser on 32-bit
words, in int32 with wrapping products), vectorised over [B, d].
"""

from __future__ import annotations

import torch
from torch import Tensor

_M32 = 0xFFFFFFFF


def _i32(c: int) -> int:
    """A 32-bit pattern in [0, 2^32) as the int32 value with the same bits."""
    return c - (1 << 32) if c >= (1 << 31) else c


def _fmix32(x: Tensor) -> Tensor:
    """murmur3's finaliser on int32 tensors holding 32-bit patterns: products wrap modulo 2^32
    and the masks turn arithmetic right shifts into logical ones (bit-identical to uint32)."""
    x = x ^ ((x >> 16) & 0xFFFF)
    x = x * _i32(0x85EBCA6B)
    x = x ^ ((x >> 13) & 0x7FFFF)
    x = x * _i32(0xC2B2AE35)
    return x ^ ((x >> 16) & 0xFFFF)


def _fmix32_int(x: int) -> int:
    x &= _M32
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & _M32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & _M32
    return x ^ (x >> 16)


def keyed_uniform(seed: int, epoch: int, ids: Tensor, d: int, stream: int, dtype=torch.float32) -> Tensor:
    """Uniform [0, 1) numbers for each (id, coordinate).  ids: [B] int64 -> [B, d]."""
    k1 = _fmix32_int(_fmix32_int(seed) ^ _fmix32_int(epoch * 0x9E3779B1 + 1))
    k2 = _fmix32_int(k1 ^ _fmix32_int(stream * 0x7F4A7C15 + 7))
    coord = torch.arange(d, device=ids.device, dtype=torch.int64)
    x = (ids.to(torch.int64).unsqueeze(1) * d + coord) & _M32
    x = (x - ((x >> 31) << 32)).to(torch.int32)  # same 32 bits, as int32 (half the memory traffic)
    x = _fmix32(x ^ _i32(k1))
    x = _fmix32(x ^ _i32(k2))
    return (x.to(torch.int64) & _M32).to(dtype) * (1.0 / 4294967296.0)


def keyed_dropout(x: Tensor, drop: float, seed: int, epoch: int, ids: Tensor, stream: int) -> Tensor:
    """Inverted element-wise dropout of x [B, d] with masks keyed by `ids` [B]."""
    if drop <= 0.0:
        return x
    return x * keyed_mask(drop, seed, epoch, ids, x.shape[1], stream, x.dtype)


def keyed_mask(drop: float, seed: int, epoch: int, ids: Tensor, d: int, stream: int, dtype=torch.float32) -> Tensor:
    """The scaled mask keyed_dropout multiplies by: 1/(1−drop) where kept, 0 where dropped.  -> [B, d]."""
    u = keyed_uniform(seed, epoch, ids, d, stream, dtype=torch.float32)
    return (u >= drop).to(dtype) / (1.0 - drop)


class EpochMasks:
    """Every unit's dropout masks of one epoch, hashed in one go at the epoch's first batch and
    then gathered per batch: the same bits as `keyed_dropout`, without re-hashing per batch.

    Falls back to per-batch hashing when the table would exceed `max_elements`."""

    def __init__(self, seed: int, n_units: int, d: int, max_elements: int = 1 << 25):
        self.seed, self.n_units, self.d = seed, n_units, d
        self.enabled = n_units * d * 3 <= max_elements
        self._epoch: int | None = None
        self._tables: dict[tuple[int, float], Tensor] = {}

    def apply(self, x: Tensor, drop: float, epoch: int, ids: Tensor, stream: int) -> Tensor:
        """keyed_dropout(x, drop, seed, epoch, ids, stream), from the epoch's cached table."""
        if drop <= 0.0:
            return x
        if not self.enabled:
            return keyed_dropout(x, drop, self.seed, epoch, ids, stream)
        if epoch != self._epoch:
            self._epoch, self._tables = epoch, {}
        key = (stream, drop)
        table = self._tables.get(key)
        if table is None or table.device != x.device or table.dtype != x.dtype:
            all_ids = torch.arange(self.n_units, device=x.device)
            table = self._tables[key] = keyed_mask(drop, self.seed, epoch, all_ids, self.d, stream, x.dtype)
        return x * table.index_select(0, ids)
