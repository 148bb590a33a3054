"""Comparison of golden training records (shared by the test and `make_golden.py`)."""

from __future__ import annotations

import math

RTOL = 1e-6
ATOL = 1e-9


def _close(a: float, b: float) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return abs(a - b) <= ATOL + RTOL * abs(a)


def _walk(want, got, where: str, out: list[str]) -> None:
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(want) != set(got):
            out.append(f"{where}: keys {sorted(want) if isinstance(want, dict) else want} != "
                       f"{sorted(got) if isinstance(got, dict) else got}")
            return
        for k in want:
            _walk(want[k], got[k], f"{where}.{k}", out)
    elif isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            out.append(f"{where}: length {len(want)} != {len(got) if isinstance(got, list) else got}")
            return
        for i, (a, b) in enumerate(zip(want, got)):
            _walk(a, b, f"{where}[{i}]", out)
    elif isinstance(want, (int, float)) and not isinstance(want, bool):
        if not isinstance(got, (int, float)) or not _close(float(want), float(got)):
            out.append(f"{where}: {want!r} != {got!r}")
    elif want != got:
        out.append(f"{where}: {want!r} != {got!r}")


def compare_runs(want: dict, got: dict) -> list[str]:
    """Differences between two {run name: record} dicts (config excluded: it is the input)."""
    out: list[str] = []
    for name in want:
        if name not in got:
            out.append(f"{name}: missing")
            continue
        w = {k: v for k, v in want[name].items() if k != "config"}
        g = {k: v for k, v in got[name].items() if k != "config"}
        _walk(w, g, name, out)
    return out
