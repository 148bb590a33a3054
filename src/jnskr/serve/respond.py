"""Answers whose work is bounded and shared fairly between clients.

The service runs on one asyncio event loop, so a request that computes for 200 ms stalls every
other client for 200 ms.  Here the cost of an answer is bounded and sliced:

* explanations cover at most `MAX_EXPLAINED` items of a list (the answer says how many in
  ``"explained"``); the other items come without one;
* rows are written (`jnskr.serve.encode`) in slices of `ROWS_PER_SLICE` rows (explained rows:
  about `FACTS_PER_SLICE` facts), and a *heavy* answer (more than one slice) hands the loop back
  to the other requests between slices, so a light request waits for at most one slice (about
  1-2 ms of work), not for a whole heavy answer;
* `Lanes`: heavy requests run one at a time (``heavy_slots``) and the others wait their turn in
  arrival order -- queued, never refused -- while light requests never wait for a slot.  While
  light requests keep arriving, a heavy answer also rests `HEAVY_REST` times as long as each
  slice worked, so heavy answers never take more than 1 / (1 + HEAVY_REST) of the server's time
  from light ones; alone, it runs at full speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from jnskr.serve.encode import utf8
MAX_EXPLAINED = 100  # items explained per answer
ROWS_PER_SLICE = 200  # plain rows written between two yields
FACTS_PER_SLICE = 400  # listed facts written between two yields
HEAVY_REST = 1.0  # with light traffic, a heavy answer rests this many times as long as each slice worked
LIGHT_RECENT_S = 0.1  # light traffic: a light request started within this many seconds


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def explain_slice(facts: int) -> int:
    """Explained rows per slice for `facts` facts per row."""
    return max(1, FACTS_PER_SLICE // max(1, int(facts)))


def n_explained(n_rows: int, explain: bool) -> int:
    return min(int(n_rows), MAX_EXPLAINED) if explain else 0


def is_heavy(n_rows: int, explain: bool = False, facts: int = 0) -> bool:
    """Whether an answer of `n_rows` rows (the first `n_explained` with `facts` facts) takes more
    than one slice."""
    e = n_explained(n_rows, explain)
    return n_rows > ROWS_PER_SLICE or e > explain_slice(facts)


class Lanes:
    """At most `heavy_slots` heavy requests at a time; the others wait in arrival order (asyncio's
    semaphore is first-come first-served).  Light requests pass straight through."""

    def __init__(self, heavy_slots: int = 1):
        self.heavy_slots = int(heavy_slots)
        self._sem: asyncio.Semaphore | None = None
        self._loop = None
        self.waiting = 0  # heavy requests waiting for a slot
        self.light_seen = float("-inf")  # time.monotonic() of the last light request

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._loop is not loop:  # one per event loop (tests start several)
            self._sem, self._loop = asyncio.Semaphore(self.heavy_slots), loop
        return self._sem

    @contextlib.asynccontextmanager
    async def slot(self, heavy: bool):
        if not heavy:
            self.light_seen = time.monotonic()
            yield
            return
        sem = self._semaphore()
        self.waiting += 1
        try:
            await sem.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            sem.release()

    async def pause(self, worked: float) -> None:
        """Between two slices of a heavy answer that worked `worked` seconds: let the other
        requests run, and rest while light traffic is about."""
        light = time.monotonic() - self.light_seen < LIGHT_RECENT_S
        await asyncio.sleep(worked * HEAVY_REST if light else 0)


async def _yield(worked: float) -> None:
    await asyncio.sleep(0)


async def items_json(engine, top, p=None, explain: bool = False, facts: int = 5, pause=_yield) -> tuple[str, int]:
    """The JSON array of the rows of a one-row top-k (the objects of `Engine.rows`), the first
    `n_explained` with their explanation, built slice by slice with ``await pause(seconds the
    slice worked)`` between slices.  -> (JSON text, number explained)."""
    idx, scores = top
    idx, scores = idx[0], scores[0]
    w = engine.writer()
    n_exp = n_explained(int((idx >= 0).sum()), explain)
    step_e = explain_slice(facts)
    bounds = [(lo, min(lo + step_e, n_exp), True) for lo in range(0, n_exp, step_e)]
    bounds += [(lo, min(lo + ROWS_PER_SLICE, len(idx)), False) for lo in range(n_exp, len(idx), ROWS_PER_SLICE)]
    parts: list[str] = []
    t = time.perf_counter()
    for s, (lo, hi, with_exp) in enumerate(bounds):
        if s:
            await pause(time.perf_counter() - t)
            t = time.perf_counter()
        exps = None
        if with_exp:
            exps = w.explanations(engine.breakdown(p.expand(hi - lo, -1), idx[lo:hi], facts))
        parts.extend(w.rows(idx[lo:hi], scores[lo:hi], lo, exps))
    return "[" + ",".join(parts) + "]", n_exp


async def list_json(rows_of, n: int, pause=_yield) -> str:
    """A JSON array of `n` objects, `rows_of(lo, hi)` giving the JSON texts of objects lo..hi-1,
    in slices with ``await pause(seconds the slice worked)`` between them."""
    parts: list[str] = []
    t = time.perf_counter()
    for s, lo in enumerate(range(0, n, ROWS_PER_SLICE)):
        if s:
            await pause(time.perf_counter() - t)
            t = time.perf_counter()
        parts.extend(rows_of(lo, min(n, lo + ROWS_PER_SLICE)))
    return "[" + ",".join(parts) + "]"


def envelope(head: dict, key: str, array_json: str) -> bytes:
    """``{**head, key: <array_json>}`` as UTF-8 JSON, the array already encoded."""
    h = _dumps(head)
    sep = "," if head else ""
    return utf8(h[:-1] + sep + _dumps(key) + ":" + array_json + "}")
