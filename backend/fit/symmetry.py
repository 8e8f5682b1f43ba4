"""Expression symmetry prior for the half of the face a turned photo hides.

At a large yaw the far side's landmarks (jaw, mouth corner, brow) are unreliable, and the model's
local expression shapes that come in mirror pairs (``mouthSmile_L``/``mouthSmile_R``, ``jawLeft``/
``jawRight``, …) follow them freely: the hidden half gets a twisted mouth. Real faces' expressions
are mostly symmetric, so each pair's coefficient difference is penalised with a weight that grows
with the view's yaw, ``strength``·max(0, sin²(yaw) − sin²(10°)): exactly zero for a
near-frontal view (those fits are unchanged bit for bit) and ≈ ``strength``·sin²(yaw) when turned.
The weight is fixed per fit from the yaw after the landmark warm-up (evidence: docs/design.md).
"""
from __future__ import annotations

import math

import torch

_SUFFIXES = (("_L", "_R"), ("Left", "Right"))  # mirror-pair name endings
_NOT_EXPRESSION = ("eyeLook",)  # gaze: a sideways look is asymmetric by nature (fitted by .parts_term)
DEAD_ZONE_DEG = 10.0  # |yaw| up to which the prior is exactly off


def mirror_pairs(names: list[str]) -> tuple[list[int], list[int]]:
    """Indices (left, right) of the expression names that are mirror pairs (``x_L``/``x_R``,
    ``xLeft``/``xRight``), gaze excluded; empty lists for a model without named pairs."""
    index = {n: i for i, n in enumerate(names)}
    left, right = [], []
    for n, i in index.items():
        for a, b in _SUFFIXES:
            if n.endswith(a) and n[: -len(a)] + b in index and not n.startswith(_NOT_EXPRESSION):
                left.append(i)
                right.append(index[n[: -len(a)] + b])
    return left, right


def symmetry_weights(strength: float, yaw: torch.Tensor) -> torch.Tensor | None:
    """(V,) each view's weight from its yaw (V,) radians; None when every weight is zero (prior off).
    ``strength``: the weight of the mean squared L/R difference at sin²(yaw) = 1 (0: off)."""
    if strength <= 0:
        return None
    floor = math.sin(math.radians(DEAD_ZONE_DEG)) ** 2
    w = strength * (yaw.detach().sin().pow(2) - floor).clamp_min(0.0)
    return w if bool((w > 0).any()) else None


class SymmetryPrior:
    """The prior of one fit: ``loss(exp)`` with exp (V,K_exp) per view → scalar,
    Σ_v w_v · mean over pairs (x_L − x_R)², divided by V (a mean over views, like the other terms)."""

    def __init__(self, names: list[str], weights: torch.Tensor):
        left, right = mirror_pairs(names)
        dev = weights.device
        self.left = torch.tensor(left, dtype=torch.long, device=dev)
        self.right = torch.tensor(right, dtype=torch.long, device=dev)
        self.weights = weights  # (V,)

    def loss(self, exp: torch.Tensor) -> torch.Tensor:
        diff = exp[:, self.left] - exp[:, self.right]  # (V,P)
        return (self.weights * diff.pow(2).mean(-1)).mean()


def symmetry_prior(strength: float, names: list[str] | None, yaw: torch.Tensor) -> SymmetryPrior | None:
    """The fit's prior from the views' yaws (V,) radians, or None when off (strength 0, every view
    near frontal, or a model without mirror-paired expression names)."""
    if not names or not mirror_pairs(list(names))[0]:
        return None
    weights = symmetry_weights(strength, yaw)
    return None if weights is None else SymmetryPrior(list(names), weights)
