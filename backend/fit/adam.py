"""Adam for the fits' eager steps, without ``torch.optim``'s first-use cost.

``torch.optim.Optimizer`` wraps its methods in ``torch._disable_dynamo``, which imports
``torch._dynamo`` (and sympy) the first time an optimiser is built: about 1.2 s of CPU in every
fresh process, a tenth of a default head on the CPU (docs/speed.md). :class:`PlainAdam` performs
the same update, operation for operation, as ``torch.optim.Adam``'s single-tensor path with the
defaults the fits use (betas (0.9, 0.999), eps 1e-8, no weight decay, no amsgrad), so a fit is
bit-identical with either (``tests/test_fit_adam.py``). CUDA graphs need ``torch.optim.Adam``'s
``capturable`` state (:func:`backend.fit.step_graph.adam`).
"""
from __future__ import annotations

import torch

__all__ = ["PlainAdam"]


class PlainAdam:
    """Adam over parameter groups (dicts with ``params`` and ``lr``), the fits' subset of
    ``torch.optim.Adam``'s interface: ``param_groups``, ``state``, ``zero_grad``, ``step``.
    A parameter without a gradient is skipped, as torch does."""

    def __init__(self, groups: list[dict], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.betas = betas
        self.eps = eps
        self.param_groups = [{**g, "params": list(g["params"])} for g in groups]
        for g in self.param_groups:
            if "lr" not in g:
                raise ValueError("PlainAdam: every parameter group needs its own lr")
        self.state: dict[torch.Tensor, dict[str, torch.Tensor | float]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the parameters' gradients (to None, or zeros when ``set_to_none`` is False)."""
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter with a gradient (torch's ``_single_tensor_adam``)."""
        beta1, beta2 = self.betas
        for g in self.param_groups:
            lr = g["lr"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                st = self.state.get(p)
                if st is None:
                    st = self.state[p] = {"step": 0.0, "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                          "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
                st["step"] += 1.0  # torch keeps a float32 scalar tensor; small counts are exact either way
                exp_avg, exp_avg_sq = st["exp_avg"], st["exp_avg_sq"]
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step = st["step"]
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                step_size = lr / bias_correction1
                denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(self.eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)
