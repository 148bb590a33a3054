"""Thread settings that stay fast on a busy machine, applied where they belong.

With OpenMP's default waiting policy, torch's idle worker threads spin; on a loaded machine each
of the many small parallel ops of a training step then waits for a descheduled spinning sibling,
and an epoch becomes 20-70x slower.  The command line and the service therefore set
``OMP_WAIT_POLICY=PASSIVE`` before torch starts its thread pool, quiet OpenBLAS, pick the scoring
GEMM by CPU (``JNSKR_CPU_GEMM=auto``) and keep freed memory for reuse (`cli_process_setup`, called
by `jnskr.cli` before anything imports torch).  The library does none of that: importing `jnskr` or
fitting leaves the caller's process as it was, except for the thread count *during* a fit
(`scoped_threads`, restored on exit; `threads` in the config, `--threads` on the command line).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys

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


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def auto_threads(nnz: int, n_rows: int) -> int:
    """A thread count suited to the data: one for small problems, else every core (at most 8)."""
    if nnz + n_rows < SMALL_WORK:
        return 1
    return max(1, min(usable_cores(), 8))


#: mallopt parameters of glibc (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: None: not tried yet; then whether glibc took the settings
MALLOC_TUNED: bool | None = None


def reuse_freed_memory() -> bool:
    """Keep freed memory for the next allocation instead of returning it to the system (glibc).

    By default glibc maps every block over 128 KB-32 MB fresh from the kernel and unmaps it when
    freed; a training sweep allocates and frees such temporaries hundreds of times, and each new
    mapping costs a page fault per 4 KB touched.  On the VMs measured here that made an exact
    sweep 1.4-1.8x slower (ml100k-kgat: 0.45-0.57 s against 0.32 s).  Blocks up to 32 MB now come from the heap
    (``M_MMAP_THRESHOLD``) and the heap is trimmed only when 1 GB lies free at its top
    (``M_TRIM_THRESHOLD``): resident memory stays near the peak instead of falling back between
    steps.  Skipped when ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` are set (the user
    chose) or the C library is not glibc.  -> whether the settings are in effect."""
    global MALLOC_TUNED
    if MALLOC_TUNED is not None:
        return MALLOC_TUNED
    MALLOC_TUNED = False
    if not sys.platform.startswith("linux") or any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_",
                                                                           "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only (musl has a different mallopt)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    MALLOC_TUNED = bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30)) and bool(mallopt(_M_MMAP_THRESHOLD, 1 << 25))
    log.debug("malloc: freed memory kept for reuse (%s)", MALLOC_TUNED)
    return MALLOC_TUNED


def cli_process_setup() -> None:
    """The process-wide settings of the command line and the service (never called by the
    library): passive OpenMP waiting and quiet OpenBLAS threads (each only before torch / numpy
    loads, and never over the user's own setting), the scoring GEMM chosen by CPU vendor
    (``JNSKR_CPU_GEMM=auto`` unless set; `jnskr.ops.cpu_gemm`), freed memory kept for reuse."""
    if "torch" not in sys.modules:
        passive_waiting()
    if "numpy" not in sys.modules:
        quiet_blas()
    os.environ.setdefault("JNSKR_CPU_GEMM", "auto")
    reuse_freed_memory()


@contextlib.contextmanager
def scoped_threads(n: int | None, nnz: int = 0, n_rows: int = 0):
    """`set_threads` for the duration of the block; torch's thread count and global RNG state
    are as before on exit (a fit seeds torch's global generator).  Yields the count set."""
    import torch

    old, rng = torch.get_num_threads(), torch.random.get_rng_state()
    try:
        yield set_threads(n, nnz, n_rows)
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)
        torch.random.set_rng_state(rng)


def set_threads(n: int | None, nnz: int = 0, n_rows: int = 0) -> int:
    """Set torch's intra-op threads to `n` (None: `auto_threads`).  -> the count set."""
    import torch

    if n is None:
        n = auto_threads(nnz, n_rows)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    log.debug("torch threads: %d (OMP_WAIT_POLICY=%s)", n, os.environ.get("OMP_WAIT_POLICY"))
    return n
