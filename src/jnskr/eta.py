"""How far a training phase will go, for progress displays that tell the truth about time.

Selection stops early: after `patience` evaluations (every `eval_every` epochs) without a better
validation score, or at the epoch cap, whichever comes first.  An ETA to the cap is almost always
far too long, so the progress objects estimate the end from the early-stopping rule
(`StopEstimate.end`: the epoch at which the run stops if validation does not improve again) and
show the cap only as an upper bound (``≤101``).  Where nothing says how selection stops (a
progress object the pipeline did not tell, `tell_schedule`), the displays show the cap as ``≤``.
The refit's length is known exactly.

    >>> s = StopEstimate(); s.schedule(eval_every=2, patience=3, metric="recall@20")
    >>> s.end(101)            # nothing evaluated yet: the first evaluation, then 3 more
    8
    >>> s.see({"epoch": 6, "valid": {"recall@20": 0.3}}); s.end(101)
    12
    >>> phase_text("training", 4, 101, s)
    'training: epoch 4 (early stop ~12, at most 101)'
"""

from __future__ import annotations

import math


class StopEstimate:
    """The expected last epoch of a phase, from its early-stopping rule and the evaluations so far."""

    def __init__(self):
        self.eval_every: int | None = None
        self.patience: int | None = None
        self.metric: str | None = None
        self.exact = False  # the phase runs exactly its epochs (the refit)
        self.reset()

    def schedule(self, eval_every: int | None, patience: int | None, metric: str | None) -> None:
        self.eval_every, self.patience, self.metric = eval_every, patience, metric

    def reset(self, exact: bool = False) -> None:
        """A new phase (`exact`: it runs exactly its epochs, as the refit does)."""
        self.best_score, self.best_epoch, self.exact = -math.inf, 0, exact

    def see(self, record: dict) -> None:
        """An epoch's record: an evaluation at least as good as the best moves the expected end."""
        score = (record.get("valid") or {}).get(self.metric) if self.metric else None
        if score is not None and score >= self.best_score:
            self.best_score, self.best_epoch = float(score), int(record["epoch"])

    @property
    def known(self) -> bool:
        """The end is known (exact) or estimated from the early-stopping rule."""
        return self.exact or (self.eval_every is not None and self.patience is not None)

    def end(self, total: int) -> int:
        """The epoch the phase ends at if validation does not improve again (at most `total`)."""
        if self.exact or not self.known:
            return total
        first = max(self.best_epoch, self.eval_every)
        return min(total, first + self.patience * self.eval_every)


def phase_text(label: str, epoch: int, total: int, stop: StopEstimate | None) -> str:
    """``training: epoch 4 (early stop ~12, at most 101)``, ``refit: epoch 3/8``, or, where the end
    is not known, ``training: epoch 4/≤101``."""
    if stop is not None and stop.exact:
        return f"{label}: epoch {epoch}/{total}"
    if stop is None or not stop.known:
        return f"{label}: epoch {epoch}/≤{total}"
    end = stop.end(total)
    if end >= total:
        return f"{label}: epoch {epoch}/≤{total}"
    return f"{label}: epoch {epoch} (early stop ~{end}, at most {total})"


def start_text(label: str, total: int, stop: StopEstimate | None, done: int = 0) -> str:
    """``training: at most 101 epochs (early stop ~8 if validation does not improve)``, ``refit: 8 epochs``."""
    resumed = f" (from epoch {done})" if done else ""
    if stop is not None and stop.exact:
        return f"{label}: {total} epochs{resumed}"
    end = stop.end(total) if stop is not None and stop.known else total
    guess = f" (early stop ~{end} if validation does not improve)" if end < total else ""
    return f"{label}: at most {total} epochs{guess}{resumed}"


def remaining_text(seconds_per_epoch: float | None, epoch: int, total: int, stop: StopEstimate | None) -> str:
    """``about 40 s left`` (to the expected end), ``≤ 12 min left`` (to the cap, where the end is
    not known), or "" before the first epoch has a time."""
    if not seconds_per_epoch or seconds_per_epoch <= 0:
        return ""
    known = stop is not None and stop.known
    end = stop.end(total) if known else total
    left = max(0, end - epoch) * seconds_per_epoch
    return f"{'about ' if known else '≤ '}{_duration(left)} left"


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def tell_schedule(progress, eval_every: int | None, patience: int | None, metric: str | None) -> None:
    """Give the early-stopping rule of selection to every progress object inside `progress` that
    estimates its end (those with a `stop` attribute; `FanOut` parts included)."""
    stop = getattr(progress, "stop", None)
    if isinstance(stop, StopEstimate):
        stop.schedule(eval_every, patience, metric)
    for part in getattr(progress, "parts", []):
        tell_schedule(part, eval_every, patience, metric)


__all__ = ["StopEstimate", "phase_text", "remaining_text", "start_text", "tell_schedule"]
