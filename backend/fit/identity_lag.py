"""L_id evaluated every few steps, its first-order expansion in between.

The identity network (a ResNet on a 150² chip) costs as much per step as the render it looks at
(forward and backward ≈ 26 ms on one CPU thread, against ≈ 49 ms for the 224² render), yet
between two steps of the coarse fit the rendered face moves by a fraction of a grey level, and
so does L_id's gradient with respect to it. :class:`LaggedIdentity` therefore runs the network
every ``every`` steps only: at such a step it takes L_id's value ℓ₀ and its gradient g with
respect to the composite image c₀, and every step (that one included) uses the expansion

    L_id(c) ≈ ℓ₀ + ⟨g, c − c₀⟩

whose gradient reaches the fit's parameters through the renderer as L_id's own would. At a
refresh step value and gradient are L_id's exactly; ``every`` = 1 is the plain term.
"""
from __future__ import annotations

from typing import Callable

import torch

__all__ = ["LaggedIdentity"]


class LaggedIdentity:
    """L_id (:func:`backend.losses.identity_loss` of the caller's ``loss_fn``) refreshed every
    ``every`` calls.

    ``loss_fn`` maps a composite image (V,S,S,3) [0,1] to the scalar L_id (the identity network's
    features compared with the photo's, view weights included).
    """

    def __init__(self, loss_fn: Callable[[torch.Tensor], torch.Tensor], every: int = 1):
        if every < 1:
            raise ValueError(f"identity refresh interval must be ≥ 1, got {every}")
        self.loss_fn = loss_fn
        self.every = every
        self.calls = 0
        self.refreshes = 0
        self._value: torch.Tensor | None = None  # ℓ₀, scalar
        self._grad: torch.Tensor | None = None  # g = ∂L_id/∂c at c₀, (V,S,S,3)
        self._at: torch.Tensor | None = None  # c₀, (V,S,S,3)

    def __call__(self, composite: torch.Tensor) -> torch.Tensor:
        """L_id at ``composite`` (V,S,S,3), exact every ``every``-th call (the first included) and
        its first-order expansion otherwise; differentiable w.r.t. ``composite``."""
        if self.calls % self.every == 0:
            at = composite.detach().requires_grad_(True)
            with torch.enable_grad():
                value = self.loss_fn(at)
                (grad,) = torch.autograd.grad(value, at)
            self._value, self._grad, self._at = value.detach(), grad, at.detach()
            self.refreshes += 1
        self.calls += 1
        return self._value + ((composite - self._at) * self._grad).sum()
