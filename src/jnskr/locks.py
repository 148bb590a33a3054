"""One writer per run folder: a lock file beside it, held while a process writes the folder.

``jnskr train --out R`` (and ``--resume R``, ``jnskr kg train --out R``) claims ``R`` before it
loads anything: it takes the lock ``.R.lock`` beside ``R`` and only then checks that ``R`` may be
written (`jnskr.runs.check_out`), so two commands aimed at one folder cannot both pass the
check; the second is refused with one line naming the process that holds the folder.  A default
run name already taken (two runs started in the same second) moves on to ``R-2``, ``R-3``, ...

Library code takes the same lock: `jnskr.pipeline.run` (so `Recommender.fit(run_dir=...)` and
`Recommender.resume`) holds it while it writes a run folder (`hold`), re-entrantly for the thread
that holds it already (the CLI, which claims the folder before loading anything).

The lock is an ``flock`` on the lock file, so the kernel drops it when its process dies: a lock
file left by a killed process is stale and is taken over at once.  Where ``flock`` is not
available the process id written in the file decides (a lock of a process that no longer runs on
this host is stale).  The file is removed when the lock is released.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
from pathlib import Path

from jnskr.errors import JnskrError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux / macOS
    fcntl = None

__all__ = ["RunLock", "lock_path", "claim", "claim_new", "hold", "pid_alive"]

#: the run-folder locks this process holds: lock file (absolute) -> the thread holding it
_HELD: dict[str, int] = {}


def lock_path(folder: str | Path) -> Path:
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


def _key(folder: str | Path) -> str:
    return os.path.abspath(lock_path(folder))


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (a process of another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def _owner(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        owner = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _describe(owner: dict) -> str:
    pid, host = owner.get("pid"), owner.get("host")
    if not isinstance(pid, int):
        return "another jnskr process"
    where = "" if host in (None, socket.gethostname()) else f" on {host}"
    return f"another jnskr process (pid {pid}{where})"


class RunLock:
    """The lock of one run folder; `acquire` or refuse, `release` (also as a context manager)."""

    def __init__(self, folder: str | Path, doing: str = "writing"):
        self.folder = Path(folder)
        self.path = lock_path(self.folder)
        self.doing = doing
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunLock":
        holder = _HELD.get(_key(self.folder))
        if holder is not None:
            raise JnskrError(f"{self.folder}: another {'call' if holder == threading.get_ident() else 'thread'} "
                             f"of this process is writing this run folder; choose another folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return self  # no parent folder can be made: the caller's check reports that place
        for _ in range(8):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError:
                return self  # a read-only or odd place: the caller's check says why nothing can be written
            if not self._lock(fd):
                owner = _owner(fd)
                os.close(fd)
                raise JnskrError(f"{self.folder}: {_describe(owner)} is {owner.get('doing', 'writing')} this run "
                                 f"folder; wait until it ends, or choose another folder")
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # released (and removed) between our open and our lock: take the new file
                os.close(fd)
                continue
            record = {"pid": os.getpid(), "host": socket.gethostname(), "doing": self.doing,
                      "command": " ".join(sys.argv[:8])[:300]}
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(record) + "\n").encode())
            self._fd = fd
            _HELD[_key(self.folder)] = threading.get_ident()
            return self
        raise JnskrError(f"{self.path}: the lock file keeps changing; is another jnskr process starting here?")

    @staticmethod
    def _lock(fd: int) -> bool:
        """Take the flock of `fd` (False: another live process holds it)."""
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
            except OSError:
                pass  # no flock on this file system: the process id decides
        owner = _owner(fd)
        pid = owner.get("pid")
        return not (isinstance(pid, int) and pid != os.getpid() and owner.get("host") == socket.gethostname()
                    and pid_alive(pid))

    def release(self) -> None:
        if self._fd is None:
            return
        _HELD.pop(_key(self.folder), None)
        try:
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self if self.held else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def hold(folder: str | Path, doing: str = "writing"):
    """`folder`'s lock for the duration of the block, unless this thread holds it already (a CLI
    command claims its folder first, then the library writes it); refused with one line when
    another process or thread writes the folder."""
    if _HELD.get(_key(folder)) == threading.get_ident():
        yield
        return
    lock = RunLock(folder, doing).acquire()
    try:
        yield
    finally:
        lock.release()


def claim(folder: str | Path, check=None, doing: str = "writing") -> RunLock:
    """Lock `folder`, then run `check(folder)` (which raises when it may not be written) under the
    lock: no other jnskr process can pass the same check until the lock is released."""
    lock = RunLock(folder, doing).acquire()
    try:
        if check is not None:
            check(Path(folder))
    except BaseException:
        lock.release()
        raise
    return lock


def claim_new(base: str | Path, check=None, tries: int = 100) -> tuple[Path, RunLock]:
    """A default run name: `base`, else `base-2`, `base-3`, ... the first that does not exist and
    is not claimed by another process -> (that folder, its lock)."""
    base = Path(base)
    for n in range(1, tries + 1):
        folder = base if n == 1 else base.with_name(f"{base.name}-{n}")
        if folder.exists():
            continue
        try:
            lock = RunLock(folder).acquire()
        except JnskrError:
            continue
        if folder.exists():  # made by a process that did not lock it
            lock.release()
            continue
        try:
            if check is not None:
                check(folder)
        except BaseException:
            lock.release()
            raise
        return folder, lock
    raise JnskrError(f"{base}: {tries} run folders of this name exist already; give --out")

