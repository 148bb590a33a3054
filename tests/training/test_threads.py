"""Process settings for speed on shared machines (jnskr/threads.py): freed memory kept for reuse."""

import os
import subprocess
import sys

import pytest

glibc_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# a 16 MB block is freed, then the same size is asked for again: page faults of the second request
PROBE = """
import ctypes, resource, sys
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "tuned":
    from jnskr.threads import reuse_freed_memory
    print(reuse_freed_memory())
else:
    print(None)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
p = libc.malloc(1 << 24); ctypes.memset(p, 1, 1 << 24); libc.free(p)
f0 = faults()
p = libc.malloc(1 << 24); ctypes.memset(p, 1, 1 << 24)
print(faults() - f0)
"""


def _probe(mode, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env={**base, **env}, capture_output=True, text=True,
                         check=True)
    flag, faults = out.stdout.split()
    return flag, int(faults)


@glibc_linux
def test_freed_memory_is_reused_without_page_faults():
    try:
        import ctypes

        ctypes.CDLL(None).gnu_get_libc_version
    except AttributeError:
        pytest.skip("not glibc")
    flag, tuned = _probe("tuned")
    assert flag == "True"
    _, plain = _probe("plain")
    assert tuned < 100 < plain  # 16 MB = 4096 pages touched afresh without the setting


@glibc_linux
def test_a_users_malloc_settings_are_left_alone():
    flag, _ = _probe("tuned", MALLOC_TRIM_THRESHOLD_="0")
    assert flag == "False"


def test_the_command_line_setup_applies_it_and_set_threads_does_not(monkeypatch):
    from jnskr import threads

    calls = []
    monkeypatch.setattr(threads, "reuse_freed_memory", lambda: calls.append(1) or True)
    threads.set_threads(1)
    assert calls == []  # library code: no allocator change
    monkeypatch.setenv("JNSKR_CPU_GEMM", "torch")
    threads.cli_process_setup()
    assert calls == [1]
