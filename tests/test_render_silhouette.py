"""Soft silhouette: analytic fringe values and gradients at the silhouette."""
from __future__ import annotations

import math

import pytest
import torch

from backend.render import rasterize, soft_silhouette


def _square(x0, y0, x1, y1, dtype=torch.float64):
    sv = torch.tensor([[[x0, y0, 0.0], [x1, y0, 0.0], [x1, y1, 0.0], [x0, y1, 0.0]]], dtype=dtype)
    return sv, torch.tensor([[0, 1, 2], [0, 2, 3]])


def test_fringe_values_follow_the_edge_distance():
    sv, faces = _square(2.3, 2.2, 6.7, 5.6)  # covers x 3..6, y 3..5
    fr = rasterize(sv, faces, 10, 10)
    a = soft_silhouette(sv, faces, fr, sigma=0.5)
    assert torch.equal(a[fr.mask], torch.ones(int(fr.mask.sum()), dtype=a.dtype))
    sig = lambda d: 2 / (1 + math.exp(d / 0.5))  # noqa: E731
    assert a[0, 4, 7].item() == pytest.approx(sig(0.3))  # right of x = 6.7
    assert a[0, 4, 2].item() == pytest.approx(sig(0.3))  # left of x = 2.3
    assert a[0, 6, 4].item() == pytest.approx(sig(0.4))  # below y = 5.6
    assert a[0, 4, 8].item() == 0.0 and a[0, 0, 0].item() == 0.0  # outside the 3×3 window


def test_soft_silhouette_gradient_matches_finite_differences():
    sv0, faces = _square(2.3, 2.2, 6.7, 5.6)
    w = torch.rand(1, 10, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def loss(shift):
        sv = sv0 + torch.stack([shift, shift * 0.5, shift * 0]).view(1, 1, 3)
        fr = rasterize(sv, faces, 10, 10)
        return (soft_silhouette(sv, faces, fr, sigma=0.7) * w).sum()

    t = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(loss(t), t)
    h = 1e-6
    with torch.no_grad():
        fd = (loss(t + h) - loss(t - h)) / (2 * h)
    assert abs(g.item()) > 1e-3
    assert g.item() == pytest.approx(fd.item(), rel=1e-5, abs=1e-7)
