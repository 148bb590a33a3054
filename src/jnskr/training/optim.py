"""Adagrad with TF1 semantics, without `torch.optim`.

`torch.optim.Optimizer.add_param_group` imports `torch._dynamo` (≈1.6 s on the 2-core machines
measured here, bench/results/tta), a third of a small run's start-up.  This is the same update
as `torch.optim.Adagrad(lr, initial_accumulator_value, eps=0)` (tests/training/test_optim.py checks it to
the last bit against torch's), as foreach ops over each group's dense tensors:

    g ← ∇ + λ θ (λ = the group's ``weight_decay``);   s ← s + g²;   θ ← θ − lr · g / √s

Its `state_dict` has torch's layout (``state`` by parameter index with ``step`` and ``sum``;
``param_groups`` with ``params`` as indices), so trainer checkpoints read the same either way.
"""

from __future__ import annotations

import torch
from torch import Tensor


#: torch's fused kernel (the one `torch.optim.Adagrad(fused=True)` runs), called directly
_FUSED = getattr(torch, "_fused_adagrad_", None)


class Adagrad:
    """TF1 Adagrad (no epsilon) over param groups (dicts with ``params`` and ``weight_decay``)."""

    def __init__(self, params, lr: float, initial_accumulator: float):
        params = list(params)
        if params and not isinstance(params[0], dict):
            params = [{"params": params}]
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        self.defaults = {"lr": float(lr), "weight_decay": 0.0, "initial_accumulator_value": float(initial_accumulator)}
        self.param_groups: list[dict] = []
        for g in params:
            group = {**self.defaults, **{k: v for k, v in g.items() if k != "params"}, "params": list(g["params"])}
            self.param_groups.append(group)
        self.state: dict[Tensor, dict] = {}
        for g in self.param_groups:
            for p in g["params"]:
                self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                 "sum": torch.full_like(p, g["initial_accumulator_value"], memory_format=torch.preserve_format)}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for g in self.param_groups:
            ps = [p for p in g["params"] if p.grad is not None]
            if not ps:
                continue
            grads = [p.grad for p in ps]
            if any(gr.is_sparse for gr in grads):
                raise ValueError("sparse gradients are not supported")
            sums = [self.state[p]["sum"] for p in ps]
            steps = [self.state[p]["step"] for p in ps]
            torch._foreach_add_(steps, 1)
            if _FUSED is not None and len({p.device for p in ps}) == 1 and ps[0].device.type in ("cpu", "cuda"):
                _FUSED(ps, grads, sums, steps, lr=g["lr"], lr_decay=0.0, weight_decay=g["weight_decay"], eps=0.0,
                       maximize=False, grad_scale=None, found_inf=None)
                continue
            if g["weight_decay"]:
                grads = torch._foreach_add(grads, ps, alpha=g["weight_decay"])
            torch._foreach_addcmul_(sums, grads, grads, value=1.0)
            torch._foreach_addcdiv_(ps, grads, torch._foreach_sqrt(sums), value=-g["lr"])

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        index = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                s = self.state[p]
                state[index[id(p)]] = {"step": s["step"].clone(), "sum": s["sum"].clone()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, d: dict) -> None:
        params = [p for g in self.param_groups for p in g["params"]]
        saved = d.get("param_groups", [])
        if len(saved) != len(self.param_groups) or any(len(s["params"]) != len(g["params"])
                                                       for s, g in zip(saved, self.param_groups)):
            raise ValueError("the optimizer state does not match these parameters")
        ids = [i for s in saved for i in s["params"]]
        for p, i in zip(params, ids):
            s = d["state"].get(i)
            if s is None:
                continue
            if tuple(s["sum"].shape) != tuple(p.shape):
                raise ValueError("the optimizer state does not match these parameters")
            self.state[p] = {"step": torch.as_tensor(s["step"], dtype=torch.float32).to(p.device).clone(),
                             "sum": s["sum"].to(device=p.device, dtype=p.dtype).clone()}
        for s, g in zip(saved, self.param_groups):
            for k, v in s.items():
                if k != "params":
                    g[k] = v


__all__ = ["Adagrad"]
