"""Which process of a distributed launch this is, from the environment torchrun sets.

torchrun sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` for every process.
Left-overs of another launch (a shell that exported ``RANK=1``) must not make a plain command a
silent "rank 1": a world of one process is rank 0 whatever ``RANK`` says, and a world of several
without a master address is a one-line error rather than a hang or a silenced error line.
"""

from __future__ import annotations

import os

from jnskr.errors import JnskrError

__all__ = ["world_from_env", "is_main_process"]


def world_from_env() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) unless launched as one of several processes."""
    env = os.environ
    raw_rank, raw_world = env.get("RANK", "").strip(), env.get("WORLD_SIZE", "").strip()
    try:
        world = int(raw_world) if raw_world else 1
        rank = int(raw_rank) if raw_rank else 0
    except ValueError:
        raise JnskrError(f"RANK={raw_rank!r} WORLD_SIZE={raw_world!r}: not integers; unset them (torchrun sets "
                         "them for each process it starts)") from None
    if world <= 1:
        if world < 1:
            raise JnskrError(f"WORLD_SIZE={raw_world!r}: must be at least 1; unset it")
        return 0, 1
    if not 0 <= rank < world:
        raise JnskrError(f"RANK={raw_rank!r} is not a rank of WORLD_SIZE={world}; unset RANK and WORLD_SIZE "
                         "(left over from another launch?) or launch with torchrun")
    if not env.get("MASTER_ADDR") or not env.get("MASTER_PORT"):
        raise JnskrError(f"WORLD_SIZE={world} is set but MASTER_ADDR / MASTER_PORT are not: left over from another "
                         "launch? unset RANK and WORLD_SIZE, or launch with torchrun")
    return rank, world


def is_main_process() -> bool:
    """Whether this process speaks for the run (rank 0; also when the environment is invalid,
    so that the error about it is printed)."""
    try:
        return world_from_env()[0] == 0
    except JnskrError:
        return True
