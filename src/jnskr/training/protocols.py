"""What the trainer needs from a model's objective and from its exact blocks, stated once.

A model family supplies both (`Model.objective`, `Model.block_sweeps`); `jnskr.training.trainer`
calls only what these protocols name, so a new family needs no change here.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Objective(Protocol):
    """What one optimiser step minimises.  Batch units are 0..n_units-1 (users, items or pairs)."""

    n_units: int

    def __call__(self, units: Tensor, epoch: int, strategy) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of the batch `units` [B] in `epoch` -> (scalar loss, detached named parts)."""
        ...

    def param_groups(self) -> list[dict]:
        """Optimiser parameter groups ({"params": [...], "weight_decay": λ})."""
        ...

    def l2(self) -> Tensor | None:
        """The value of the L2 term that enters as weight decay, for the log (None: there is none)."""
        ...

    def weight_summary(self) -> dict[str, float]:
        """The constant loss weights in brief, for the log ({}: nothing to say)."""
        ...


@runtime_checkable
class Sweeps(Protocol):
    """The exact blocks of `train.solver: als`: each sweep minimises the blocks in closed form, then
    (when `first_order`) the trainer takes one epoch of first-order steps on `param_groups()` with
    `exact_params()` frozen."""

    first_order: bool

    def sweep(self, epoch: int) -> None: ...

    def value(self) -> float:
        """F, the objective the blocks minimise (the loss logged per sweep)."""
        ...

    def exact_params(self) -> list[Tensor]: ...

    def param_groups(self) -> list[dict]: ...
