"""Dropout whose masks are keyed by (seed, epoch, id, stream), not by a global RNG stream.

The mask of an item depends only on the seed, the epoch, the item id and the stream (which
of the three masks of spec §2.4), so it is the same whatever batch, rank or process count
the item lands in.  Uniforms come from a counter-based hash (murmur3 finaliser on 32-bit
words, computed in int64 without overflow), vectorised over [B, d].
"""

from __future__ import annotations

import torch
from torch import Tensor

_M32 = 0xFFFFFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    """(x * c) mod 2^32 for x in [0, 2^32) without int64 overflow."""
    lo = c & 0xFFFF
    hi = c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _M32


def _fmix32(x: Tensor) -> Tensor:
    x = x ^ (x >> 16)
    x = _mul32(x, 0x85EBCA6B)
    x = x ^ (x >> 13)
    x = _mul32(x, 0xC2B2AE35)
    return x ^ (x >> 16)


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
    x = _fmix32(x ^ k1)
    x = _fmix32(x ^ k2)
    return x.to(dtype) * (1.0 / 4294967296.0)


def keyed_dropout(x: Tensor, drop: float, seed: int, epoch: int, ids: Tensor, stream: int) -> Tensor:
    """Inverted element-wise dropout of x [B, d] with masks keyed by `ids` [B]."""
    if drop <= 0.0:
        return x
    u = keyed_uniform(seed, epoch, ids, x.shape[1], stream, dtype=torch.float32)
    mask = (u >= drop).to(x.dtype) / (1.0 - drop)
    return x * mask
