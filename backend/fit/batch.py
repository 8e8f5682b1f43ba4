"""Batched independent fits: B photos of different people as one batch (``reconstruct --each``
on a GPU).

The coarse and detail fits take ``groups`` (V,) long, the item (person) each view belongs to:
0..G−1, non-decreasing, every item with the same number of views. Each item owns its rows of
the free parameters (identity, albedo, expression, displacement, albedo gain); pose and light
are per view as before. Nothing couples two items: every loss term is a mean over the batch of
per-item values (equal view counts), and the fit multiplies the total by G, so the loss is the
sum of the per-item losses and each item's gradient is the one its own fit would see. Adam is
elementwise, so independent rows stay independent, and the batched fit of G photos equals G
one-by-one fits up to float rounding (tests/test_fit_batch.py states the tolerance).

The index helpers live in :mod:`.groups`; this module holds the split of a batched result into the
per-item results a one-by-one fit returns.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from ..detail import DetailedSurface, dense_topology_batch, topology_subset
from .coarse import CoarseFitResult
from .detail import DetailFitResult
from .groups import first_views, n_items

__all__ = ["split_coarse", "split_detail"]


def _rows(x: torch.Tensor | None, index: slice) -> torch.Tensor | None:
    return None if x is None else x[index]


def _item_history(entry: dict, g: int) -> dict:
    """A batch's history entry as item g's: its own L_pixel, landmark and photo trust and lens fallback where the fit recorded them."""
    own = {k: v for k, v in entry.items()
           if k not in ("pixel_items", "landmark_trust_items", "photo_trust_items", "lens_fallback_items")}
    if "pixel_items" in entry:
        own["pixel"] = entry["pixel_items"][g]
    for key in ("landmark_trust", "photo_trust"):  # recorded per item only where below 1
        if f"{key}_items" in entry and entry[f"{key}_items"][g] < 1.0:
            own[key] = entry[f"{key}_items"][g]
    if "lens_fallback_items" in entry and entry["lens_fallback_items"][g] > 0.0:  # recorded only where the lens changed
        own["lens_fallback"] = 1.0
    return own


def split_coarse(result: CoarseFitResult, groups: torch.Tensor) -> list[CoarseFitResult]:
    """The per-item results of a batched coarse fit, laid out as one-by-one fits return them
    (id (1,K_id), exp (V_g,K_exp), pose (V_g,7), albedo (1,...)); each keeps the batch's history
    (loss terms are the batch's means, except L_pixel at the end of each photometric stage)."""
    G = n_items(groups)
    per = groups.numel() // G
    out = []
    for g in range(G):
        v, i = slice(g * per, (g + 1) * per), slice(g, g + 1)
        exp = result.exp[v]
        out.append(CoarseFitResult(
            id=result.id[i], exp=exp, pose=result.pose[v], sh=result.sh[v], albedo=_rows(result.albedo, i),
            tex=_rows(result.tex, i), verts=result.verts[v], landmarks=result.landmarks[v],
            history=[_item_history(h, g) for h in result.history],
            camera=None if result.camera is None else result.camera.select(list(range(v.start, v.stop))),
        ))
    return out


def split_detail(result: DetailFitResult, groups: torch.Tensor) -> list[DetailFitResult]:
    """The per-item results of a batched detail fit, each with its own dense topology (the one
    its one-by-one fit builds; the batch rendered their union)."""
    G = n_items(groups)
    per = groups.numel() // G
    _, item_faces = dense_topology_batch(result.layout, first_views(result.surface.coarse_positions, groups))
    topologies = [topology_subset(result.topology, item_faces[g]) for g in range(G)]
    out = []
    for g in range(G):
        v, i = slice(g * per, (g + 1) * per), slice(g, g + 1)
        s = result.surface
        surface = DetailedSurface(s.positions[v], s.normals[v], s.coarse_positions[v], s.coarse_normals[v],
                                  s.delta_normals[v], s.dense_verts[v])
        lists = {k: getattr(result, k)[v] for k in (
            "pixel_coarse", "pixel_detail", "pixel_skin_coarse", "pixel_skin_detail", "pixel_albedo_only",
            "pixel_rest_coarse", "pixel_rest_detail", "rest_share_coarse")}
        out.append(replace(result, displacement=result.displacement[i], surface=surface, topology=topologies[g],
                           dense_albedo=result.dense_albedo[i], history=list(result.history), **lists))
    return out
