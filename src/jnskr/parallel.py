"""Training strategies: how a batch's rows are read and its gradients combined.

`LocalStrategy` is one process.  `DistStrategy` is data-parallel training on torch.distributed
(gloo on CPU, nccl on GPU), launched by torchrun.  The trainer receives a strategy; models and
objectives read rows only through it (`rows`, `gram_rows`, `batch_gram`, `h_allpairs`), so
neither stores it.

Every rank holds a full replica of the parameters and takes its share of each global item
batch.  The all-pairs terms make every step's gradient dense over the user, tail and relation
tables, so a plain gradient all-reduce would move (users + items + entities)·d floats per
step.  Instead:

* the d×d batch Gram matrices (Σ c⁻_v q_v q_vᵀ for CF, Σ w⁻_v e_v e_vᵀ for KG) are all-reduced
  (2·d² floats) and every rank computes the dense all-pairs gradients of the full tables
  itself, identically;
* the gradients of the rows a rank gathered (its positives' users, tails and relations, its
  items) are exchanged sparsely with all_gather (indices + rows), then added everywhere;
* the small replicated parameters (h, the attention MLP) are all-reduced (the all-pairs part
  of h's gradient is taken on rank 0 only, so it counts once).

Communication per step is O(d² + rows touched by the batch's positives · d), independent of
the table sizes.  Dropout masks are keyed by (seed, epoch, item) and L2 is the optimiser's
weight decay, applied once per global step on every replica, so the result equals a
single-process run with the same global batches.
"""

from __future__ import annotations

import weakref
from collections import defaultdict

import torch
import torch.distributed as dist
from torch import Tensor

from jnskr.launch import world_from_env  # noqa: F401 - the launch environment, re-exported
from jnskr.losses.gram import gram, gram_with_rows


def init_from_env(device: torch.device) -> bool:
    """Initialise the process group when launched by torchrun with WORLD_SIZE > 1."""
    _, world = world_from_env()
    if world <= 1:
        return False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return True


class LocalStrategy:
    """One process: plain row gathers, the fused Gram+rows op, nothing to combine."""

    rank = 0
    world = 1

    def __init__(self):
        self._grams: dict[str, tuple] = {}  # name -> (weak ref to the table, its version, its Gram)

    def rows(self, name: str, table: Tensor, idx: Tensor) -> Tensor:
        return table.index_select(0, idx)

    def gram_rows(self, name: str, table: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """(tableᵀtable, table[idx]) as one op with one dense gradient.  A table that takes no
        gradient (frozen while the block solver's first-order pass runs) keeps its Gram until it
        changes (tracked by the tensor's version counter), instead of recomputing it per batch."""
        if table.requires_grad and torch.is_grad_enabled():
            return gram_with_rows(table, idx)
        hit = self._grams.get(name)
        if hit is None or hit[0]() is not table or hit[1] != table._version:
            hit = (weakref.ref(table), table._version, gram(table))
            self._grams[name] = hit
        return hit[2], table.index_select(0, idx)

    def batch_gram(self, name: str, local: Tensor) -> Tensor:
        return local

    def h_allpairs(self, h: Tensor) -> Tensor:
        return h

    def split_batch(self, units: Tensor) -> Tensor:
        return units

    def all_finite(self, loss: Tensor) -> bool:
        return bool(torch.isfinite(loss))

    def once(self, term: Tensor) -> Tensor:
        """A term every rank computes in full (an all-pairs term over global Grams): its value
        counts on one rank only, so that the ranks' losses add up to the global loss; its
        gradient is unchanged everywhere."""
        return term

    def any_rank(self, flag: bool) -> bool:
        """Whether `flag` holds on any rank (a decision every rank then takes together)."""
        return flag

    def sum_values(self, values: dict[str, float]) -> dict[str, float]:
        """Per-epoch sums of this rank's losses -> the sums over every rank (the global loss)."""
        return values

    def after_backward(self, model) -> None:
        pass

    def is_main(self) -> bool:
        return True


class _GatherRows(torch.autograd.Function):
    """table[idx] whose gradient goes to a sink instead of `table` (exchanged sparsely)."""

    @staticmethod
    def forward(ctx, table: Tensor, idx: Tensor, sink: "DistStrategy", name: str) -> Tensor:
        ctx.sink, ctx.name = sink, name
        ctx.save_for_backward(idx)
        return table.index_select(0, idx)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (idx,) = ctx.saved_tensors
        ctx.sink.row_grads[ctx.name].append((idx, grad))
        return None, None, None, None


class _GlobalGram(torch.autograd.Function):
    """Value: the sum over ranks of `local`; gradient: to `local` only."""

    @staticmethod
    def forward(ctx, local: Tensor, comm: "DistStrategy") -> Tensor:
        out = local.detach().clone()
        comm.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


class DistStrategy(LocalStrategy):
    """Row routing and collectives of one rank.  Counts the bytes it moves.

    Only models whose rows are parameter tables (`Model.row_tables()`) are supported: the row
    gradients are routed by table name."""

    def __init__(self, rank: int | None = None, world: int | None = None):
        super().__init__()
        self.rank = dist.get_rank() if rank is None else rank
        self.world = dist.get_world_size() if world is None else world
        self.row_grads: dict[str, list[tuple[Tensor, Tensor]]] = defaultdict(list)
        self.bytes_sent = 0

    # -- hooks used by the model and the objectives
    def rows(self, name: str, table: Tensor, idx: Tensor) -> Tensor:
        if not torch.is_grad_enabled() or not table.requires_grad:
            return table.index_select(0, idx)
        return _GatherRows.apply(table, idx, self, name)

    def gram_rows(self, name: str, table: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """(tableᵀtable, table[idx]): the replicated table's Gram locally, the rows routed."""
        return gram(table), self.rows(name, table, idx)

    def batch_gram(self, name: str, local: Tensor) -> Tensor:
        return _GlobalGram.apply(local, self)

    def h_allpairs(self, h: Tensor) -> Tensor:
        return h if self.rank == 0 else h.detach()

    def split_batch(self, units: Tensor) -> Tensor:
        """This rank's share of a global batch."""
        return units.tensor_split(self.world)[self.rank]

    def all_finite(self, loss: Tensor) -> bool:
        flag = torch.tensor([0.0 if bool(torch.isfinite(loss)) else 1.0], device=loss.device)
        self.all_reduce(flag)
        return float(flag) == 0.0

    def once(self, term: Tensor) -> Tensor:
        return term if self.rank == 0 else term - term.detach()  # value 0, same gradient

    def any_rank(self, flag: bool) -> bool:
        return self.sum_values({"flag": float(flag)})["flag"] > 0

    def sum_values(self, values: dict[str, float]) -> dict[str, float]:
        keys = sorted(values)  # the same keys on every rank: the same objective ran
        dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=dev)
        dist.all_reduce(t)
        return {k: float(v) for k, v in zip(keys, t.tolist())}

    def after_backward(self, model) -> None:
        self.finish_grads(model)

    def is_main(self) -> bool:
        return self.rank == 0

    # -- collectives
    def all_reduce(self, t: Tensor) -> None:
        self.bytes_sent += t.numel() * t.element_size()
        dist.all_reduce(t)

    def _all_gather_var(self, t: Tensor) -> Tensor:
        """all_gather of tensors whose first dimension differs per rank."""
        n = torch.tensor([t.shape[0]], device=t.device)
        sizes = [torch.zeros_like(n) for _ in range(self.world)]
        dist.all_gather(sizes, n)
        sizes = [int(s) for s in sizes]
        pad = max(sizes)
        buf = torch.zeros((pad, *t.shape[1:]), dtype=t.dtype, device=t.device)
        buf[: t.shape[0]] = t
        out = [torch.empty_like(buf) for _ in range(self.world)]
        self.bytes_sent += buf.numel() * buf.element_size() + n.numel() * n.element_size()
        dist.all_gather(out, buf)
        return torch.cat([o[:s] for o, s in zip(out, sizes)], 0)

    def finish_grads(self, model) -> None:
        """After backward: add every rank's row gradients, sum the small parameters' gradients.

        Row gradients are coalesced per index; a table whose touched rows (over all ranks) would
        cost more to gather than the table itself is all-reduced densely instead (the cheaper
        of the two, decided identically on every rank).
        """
        for name, table in model.row_tables().items():
            parts = self.row_grads.pop(name, [])
            d = table.shape[1]
            if parts:
                idx, inv = torch.unique(torch.cat([i for i, _ in parts]), return_inverse=True)
                grad = torch.zeros(len(idx), d, dtype=table.dtype, device=table.device)
                grad.index_add_(0, inv, torch.cat([g for _, g in parts]))
            else:
                idx = torch.zeros(0, dtype=torch.long, device=table.device)
                grad = torch.zeros(0, d, dtype=table.dtype, device=table.device)
            if table.grad is None:
                table.grad = torch.zeros_like(table)
            n = torch.tensor([len(idx)], device=table.device)
            counts = [torch.zeros_like(n) for _ in range(self.world)]
            dist.all_gather(counts, n)
            self.bytes_sent += n.numel() * n.element_size()
            sparse_cost = max(int(c) for c in counts) * self.world * (d + 1)
            if sparse_cost >= table.numel():
                buf = torch.zeros_like(table)
                buf.index_add_(0, idx, grad)
                self.all_reduce(buf)
                table.grad.add_(buf)
            else:
                table.grad.index_add_(0, self._all_gather_var(idx), self._all_gather_var(grad))
        self.row_grads.clear()
        for p in model.replicated_params():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            self.all_reduce(p.grad)


def dense_allreduce_bytes(model) -> int:
    """Bytes a plain gradient all-reduce of every parameter would move per step."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def shard_users(users, rank: int, world: int):
    """This rank's share of an evaluation's users (contiguous, balanced)."""
    import numpy as np

    return np.array_split(np.asarray(users), world)[rank]


def sum_across_ranks(d: dict[str, Tensor]) -> None:
    for t in d.values():
        dist.all_reduce(t)
