"""Index helpers of batched independent fits (:mod:`.batch`): ``groups`` (V,) long names the item
(person) each view belongs to, 0..G−1 in order, every item with the same number of views."""
from __future__ import annotations

import torch

from ..losses import pixel_loss

__all__ = ["check_groups", "n_items", "per_view", "first_views", "per_item_pixel"]


def check_groups(groups: torch.Tensor | None, n_views: int) -> int:
    """The number of items G in ``groups`` (V,) (1 when None); raises ValueError unless the
    items are 0..G−1 in order, each with the same number of views."""
    if groups is None:
        return 1
    if groups.shape != (n_views,) or groups.dtype != torch.long:
        raise ValueError(f"groups must be a (V,) = ({n_views},) long tensor, got {tuple(groups.shape)} {groups.dtype}")
    counts = torch.bincount(groups.cpu())
    G = counts.numel()
    if G == 0 or bool((groups.cpu().diff() < 0).any()) or bool((counts != counts[0]).any()):
        raise ValueError("groups must list items 0..G-1 in order, every item with the same number of views")
    return G


def n_items(groups: torch.Tensor | None) -> int:
    """G for ``groups`` already checked by :func:`check_groups`."""
    return 1 if groups is None else int(groups[-1]) + 1


def per_view(x: torch.Tensor, groups: torch.Tensor | None, n_views: int) -> torch.Tensor:
    """Rows of a per-item (G,...) or per-view (V,...) tensor as per-view rows (V,...).

    One row is broadcast (a single item: the one-by-one fit's own expand, kept even for V = 1
    since an autograd node less changes the order gradients add up in), V rows are per view
    already (also G = V, one view per item), otherwise row ``groups[v]`` goes to view v."""
    if x.shape[0] == 1:
        return x.expand(n_views, *x.shape[1:])
    if x.shape[0] == n_views:
        return x
    return x.index_select(0, groups)


def first_views(x: torch.Tensor, groups: torch.Tensor | None) -> torch.Tensor:
    """The row of each item's first view: (V,...) → (G,...) (``x[:1]`` for one item)."""
    if groups is None:
        return x[:1]
    G, V = n_items(groups), x.shape[0]
    if G == V:
        return x
    return x[:: V // G]  # items hold V/G consecutive views each


def per_item_pixel(image: torch.Tensor, render: torch.Tensor, mask: torch.Tensor, groups: torch.Tensor) -> list[float]:
    """L_pixel of each item (:func:`backend.losses.pixel_loss` over its views): image, render
    (V,H,W,3), mask (V,H,W). Returns G floats."""
    G = n_items(groups)
    per = groups.numel() // G
    return [float(pixel_loss(image[g * per:(g + 1) * per], render[g * per:(g + 1) * per], mask[g * per:(g + 1) * per]))
            for g in range(G)]
