"""The stage-2 U-Net's input (the paper's "Stage 2"): the photo and the coarse render unwrapped
into the face UV tile, visibility-masked, and the blend of per-view outputs into one map.

Shared by predict mode (:mod:`backend.predict`) and the hybrid detail fit, which tunes the
U-Net's weights per photo (:func:`backend.fit.detail.fit_detail`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .align import CROP_SIZE
from .camera import Camera, scale_pose
from .facemodel import FaceModel
from .fit.coarse import CoarseFitResult
from .render import unwrap_image
from .render.renderer import RenderResult, RenderSettings, render
from .uvmaps import face_tile_layout

__all__ = ["DetailNetInput", "coarse_render", "detail_net_input", "blend_views"]


@dataclass
class DetailNetInput:
    """The stage-2 U-Net's input for V views: ``pair`` (V,6,Su,Su) photo and coarse render
    unwrapped into the face tile (invisible texels 0), ``visible`` (V,1,Su,Su) in {0,1}."""

    pair: torch.Tensor
    visible: torch.Tensor


def coarse_render(model: FaceModel, coarse: CoarseFitResult, pose: torch.Tensor, cam: Camera) -> RenderResult:
    """The coarse face rendered with its albedo and light, as the stage-2 trainer does (image
    (V,S,S,3)); ``pose`` (V,7) in ``cam``'s frame."""
    V = coarse.verts.shape[0]
    if coarse.albedo is not None:
        settings = RenderSettings(u_range=(0.0, float(model.uv_tiles)))
        return render(coarse.verts, model.faces, pose, cam, coarse.sh, texture=coarse.albedo.expand(V, -1, -1, -1),
                      uv=model.uv, faces_uv=model.faces_uv, settings=settings)
    colours = model.albedo(coarse.tex).expand(V, -1, -1)
    return render(coarse.verts, model.faces, pose, cam, coarse.sh, vertex_colors=colours)


@torch.no_grad()
def detail_net_input(model: FaceModel, coarse: CoarseFitResult, photo: torch.Tensor, size: int) -> DetailNetInput:
    """:func:`~backend.uvmaps.unwrap_pair` of the photo and the coarse render in one pass: one
    rasterisation (the render's) and one unwrap of both images stacked as 6 channels (same
    geometry, same visibility).

    coarse: in the 224² crop frame; photo (V,S,S,3) in [0,1] at any crop side S (the pose is
    rescaled to it); size: the U-Net's UV side."""
    S = photo.shape[1]
    k = S / CROP_SIZE
    pose = scale_pose(coarse.pose, k)
    cam = coarse.crop_camera(S)
    layout = face_tile_layout(model, size)
    rend = coarse_render(model, coarse, pose, cam)
    both = unwrap_image(torch.cat([photo, rend.image], -1), coarse.verts, model.faces, pose, cam, layout.frags,
                        fragments=rend.fragments)
    vis = both.visible.to(photo.dtype)[..., None]  # (V,Su,Su,1)
    return DetailNetInput((both.texture * vis).permute(0, 3, 1, 2), vis.permute(0, 3, 1, 2))


def blend_views(disp: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Per-view displacement maps (V,1,S,S) → one (1,1,S,S): each texel's mean over the views
    that see it (``visible`` (V,1,S,S)), the plain mean where none does."""
    weight = visible.sum(0, keepdim=True)
    blended = (disp * visible).sum(0, keepdim=True) / weight.clamp_min(1e-6)
    return torch.where(weight > 1e-6, blended, disp.mean(0, keepdim=True))
