"""Convenience renderer: model-space mesh + pose + camera → shaded image (rasterize → interpolate
→ texture → SH shading → composite)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as Fn

from ..camera import Camera, camera_to_screen, euler_to_rotation, to_camera_space
from ..device_constants import constant
from ..lighting import sh_shading, vertex_normals
from .interpolate import interpolate, sample_texture
from .rasterize import Fragments, RasterSettings, rasterize

__all__ = ["RenderSettings", "RenderResult", "render", "shade_lambertian"]


@dataclass(frozen=True)
class RenderSettings:
    """Options of :func:`render`.

    - ``background``: RGB of uncovered pixels (same units as the albedo).
    - ``u_range``: u interval the texture's width spans (ICT: ``(0, 2)``, two UDIM tiles side by side).
    - ``cull_backfaces``: skip triangles facing away (safe for closed meshes; ICT is open at
      the eyes and mouth, where back faces are visible: default False).
    - ``edge_tolerance``, ``max_candidates``: see :class:`RasterSettings`.
    - ``z_near``: perspective only: drop triangles closer than this (mm).
    """

    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    u_range: tuple[float, float] = (0.0, 1.0)
    cull_backfaces: bool = False
    edge_tolerance: float = 1e-5
    max_candidates: int = 1 << 21
    z_near: float = 1.0

    def raster_settings(self, camera: Camera) -> RasterSettings:
        persp = camera.projection == "perspective"
        return RasterSettings(
            perspective_correct=persp,
            cull_backfaces=self.cull_backfaces,
            edge_tolerance=self.edge_tolerance,
            z_near=self.z_near if persp else None,
            max_candidates=self.max_candidates,
        )


@dataclass(frozen=True)
class RenderResult:
    """Output of :func:`render` (B batch, H×W pixels).

    - ``image``: (B,H,W,3) albedo × shading over the background.
    - ``alpha``: (B,H,W) 1 on covered pixels, 0 elsewhere (float, same dtype as image).
    - ``depth``: (B,H,W) screen depth (orthographic: pixels, perspective: mm), 0 on background.
    - ``normals``: (B,H,W,3) unit camera-space normals (+Z towards the camera), 0 on background.
    - ``albedo``: (B,H,W,3) unshaded colour; ``shading``: (B,H,W,3) SH shading.
    - ``face_idx``: (B,H,W) int64, −1 background. ``fragments``: the rasteriser output.
    """

    image: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor
    normals: torch.Tensor
    albedo: torch.Tensor
    shading: torch.Tensor
    face_idx: torch.Tensor
    fragments: Fragments

    @property
    def mask(self) -> torch.Tensor:
        """(B,H,W) bool covered pixels."""
        return self.face_idx >= 0


def shade_lambertian(normals: torch.Tensor, sh: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """SH shading of per-pixel normals. normals (B,H,W,3) (normalised here, camera space),
    sh (B,27). Returns (B,H,W,3), zero where ``mask`` (B,H,W) is False."""
    n = Fn.normalize(normals, dim=-1, eps=1e-12)
    shading = sh_shading(n, sh)
    if mask is not None:
        shading = shading * mask[..., None].to(shading.dtype)
    return shading


def render(
    verts: torch.Tensor,
    faces: torch.Tensor,
    pose: torch.Tensor,
    camera: Camera,
    sh: torch.Tensor | None = None,
    *,
    texture: torch.Tensor | None = None,
    uv: torch.Tensor | None = None,
    faces_uv: torch.Tensor | None = None,
    vertex_colors: torch.Tensor | None = None,
    normals: torch.Tensor | None = None,
    settings: RenderSettings | None = None,
    face_mask: torch.Tensor | None = None,
    visible: torch.Tensor | None = None,
) -> RenderResult:
    """Render a mesh with a Lambertian SH-lit albedo.

    verts: (B,V,3) model space, mm. faces: (F,3) int. pose: (B,7) (see :mod:`backend.camera`).
    sh: (B,27) light (None: unlit, shading 1). Albedo from either ``texture`` (B,Ht,Wt,3) or
    (Ht,Wt,3), top row v = 1, sampled at ``uv`` (T,2) through ``faces_uv`` (F,3) over
    ``settings.u_range``; or ``vertex_colors`` (B,V,3)/(V,3); or grey 0.7 when neither.
    ``normals``: optional (B,V,3)/(V,3) model-space vertex normals for the shading (default: the
    area-weighted normals of ``faces``), e.g. to keep shading smooth where two meshes meet.
    ``face_mask``: optional (B,F) bool, the triangles each item draws (:func:`rasterize`).
    ``visible``: optional precomputed pass 1 (:func:`backend.render.rasterize.visibility`):
    the render then has static shapes and no host synchronisation (CUDA-graph capturable).
    Returns :class:`RenderResult`; everything is differentiable w.r.t. verts, pose, sh, albedo
    (inside the silhouette: hard edges).
    """
    settings = settings or RenderSettings()
    given = [t is not None for t in (texture, uv, faces_uv)]
    if any(given) and not all(given):
        raise ValueError("texture rendering needs all of texture, uv and faces_uv (e.g. model.uv, model.faces_uv)")
    cam_verts = to_camera_space(verts, pose, camera.projection)
    screen = camera_to_screen(cam_verts, pose, camera)
    frags = rasterize(screen, faces, camera.height, camera.width, settings.raster_settings(camera), face_mask,
                      visible)
    mask = frags.mask
    maskf = mask[..., None].to(screen.dtype)

    if normals is None:
        n_vert = vertex_normals(cam_verts, faces, face_mask)
    else:  # model → camera space: the pose's rotation (orthographic scale does not turn normals)
        R = euler_to_rotation(pose[:, 1:4]).to(screen.dtype)
        n_vert = normals.to(screen.dtype).expand(verts.shape[0], -1, -1) @ R.transpose(1, 2)
    normals = Fn.normalize(interpolate(n_vert, frags.face_idx, frags.bary, faces), dim=-1, eps=1e-12)

    if texture is not None:
        uv_pix = interpolate(uv.to(screen.dtype), frags.face_idx, frags.bary, faces_uv)
        albedo = sample_texture(texture, uv_pix, settings.u_range) * maskf
    elif vertex_colors is not None:
        albedo = interpolate(vertex_colors.to(screen.dtype), frags.face_idx, frags.bary, faces)
    else:
        albedo = maskf.expand(*mask.shape, 3) * 0.7

    if sh is None:
        shading = maskf.expand(*mask.shape, 3)
    else:
        shading = sh_shading(normals, sh) * maskf  # normals are unit already
    bg = constant(tuple(settings.background), screen.device, screen.dtype)
    image = albedo * shading + (1.0 - maskf) * bg
    return RenderResult(
        image=image,
        alpha=maskf[..., 0],
        depth=frags.depth,
        normals=normals,
        albedo=albedo,
        shading=shading,
        face_idx=frags.face_idx,
        fragments=frags,
    )
