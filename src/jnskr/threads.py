"""Thread settings that stay fast on a busy machine.

With OpenMP's default waiting policy, torch's idle worker threads spin; on a loaded machine each
of the many small parallel ops of a training step then waits for a descheduled spinning sibling,
and an epoch becomes 20-70x slower.  `jnskr` therefore sets ``OMP_WAIT_POLICY=PASSIVE`` before
torch starts its thread pool (in `jnskr/__init__.py`, unless the variable is set or torch was
imported first), and chooses the thread count from the size of the work unless told
(`threads` in the config, `--threads` on the command line).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("jnskr")

#: below this many (interactions + users + items) one thread is faster than two on small ops
SMALL_WORK = 150_000


#: OpenBLAS (numpy's BLAS) was told to park idle threads quickly (`quiet_blas`) before it loaded
BLAS_QUIET = False


def quiet_blas() -> None:
    """Ask OpenBLAS's idle threads to sleep after a short spin (``OPENBLAS_THREAD_TIMEOUT=4``:
    2^4 cycles instead of its default ~2^28).  Only effective before numpy is imported; by default
    they spin long enough to slow the torch work that follows each numpy BLAS call."""
    global BLAS_QUIET
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    BLAS_QUIET = True


def passive_waiting() -> None:
    """Ask OpenMP's idle threads to sleep, not spin (only effective before torch is imported)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def auto_threads(nnz: int, n_rows: int) -> int:
    """A thread count suited to the data: one for small problems, else every core (at most 8)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if nnz + n_rows < SMALL_WORK:
        return 1
    return max(1, min(cores, 8))


def set_threads(n: int | None, nnz: int = 0, n_rows: int = 0) -> int:
    """Set torch's intra-op threads to `n` (None: `auto_threads`).  -> the count set."""
    import torch

    if n is None:
        n = auto_threads(nnz, n_rows)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    log.debug("torch threads: %d (OMP_WAIT_POLICY=%s)", n, os.environ.get("OMP_WAIT_POLICY"))
    return n
