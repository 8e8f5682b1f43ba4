"""UV-space rasterisation (position/normal maps) and unwrapping photos into UV space.

A UV image of size Ht×Wt covers ``u ∈ u_range`` left to right and ``v ∈ [0,1]`` bottom to
top (stored top row = v 1); texel ``(i, j)`` has its centre at
``u = u0 + (j + 0.5)/Wt·(u1 − u0)``, ``v = 1 − (i + 0.5)/Ht`` (the same convention as
:func:`backend.render.interpolate.sample_texture`, so sampling a UV map at a texel centre
returns that texel). ICT's UVs span two tiles: ``u_range=(0, 1)`` is the face tile,
``(1, 2)`` the head tile, ``(0, 2)`` both side by side.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as Fn

from ..camera import Camera, project, to_camera_space
from ..lighting import vertex_normals
from .interpolate import interpolate
from .rasterize import Fragments, RasterSettings, rasterize
from .sample import grid_sample_bilinear

__all__ = [
    "rasterize_uv", "UVRasterCache", "uv_to_screen", "position_map", "normal_map",
    "UnwrapSettings", "Unwrapped", "unwrap_image",
]


def uv_to_screen(uv: torch.Tensor, height: int, width: int, u_range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """UV (T,2) → UV-image screen coordinates (T,3): x, y in texels (texel centres at integers), z = 0."""
    if u_range[1] <= u_range[0]:
        raise ValueError(f"u_range must be increasing, got {u_range}")
    u0, u1 = u_range
    x = (uv[:, 0] - u0) / (u1 - u0) * width - 0.5
    y = (1.0 - uv[:, 1]) * height - 0.5
    return torch.stack([x, y, torch.zeros_like(x)], -1)


def rasterize_uv(
    uv: torch.Tensor,
    faces_uv: torch.Tensor,
    height: int,
    width: int,
    u_range: tuple[float, float] = (0.0, 1.0),
    max_candidates: int = 1 << 21,
) -> Fragments:
    """Draw a mesh in its UV layout.

    uv: (T,2) texture coordinates, faces_uv: (F,3) indices into uv (face f of the mesh is
    triangle f here). Returns :class:`Fragments` of batch 1: per-texel face index (−1 where
    no triangle covers the texel centre, or outside ``u_range``) and barycentrics, ready for
    :func:`interpolate` with any per-vertex attribute (and the mesh's ``faces``). Overlapping
    UV islands resolve to the lower face index. Constant for a mesh and size: build once
    (see :class:`UVRasterCache`).
    """
    screen = uv_to_screen(uv.detach().float(), height, width, u_range)[None]
    settings = RasterSettings(edge_tolerance=1e-5, max_candidates=max_candidates)
    return rasterize(screen, faces_uv, height, width, settings).detach()


class UVRasterCache:
    """Memoises :func:`rasterize_uv` per (uv, faces_uv tensors, size, u_range, device).

    Keys use the tensors' identity and in-place version counter, so editing the UVs in
    place invalidates the entry. Holds at most ``max_entries`` results (oldest dropped).
    """

    def __init__(self, max_entries: int = 8):
        self.max_entries = max_entries
        self._entries: dict[tuple, tuple[Fragments, torch.Tensor, torch.Tensor]] = {}

    def get(
        self, uv: torch.Tensor, faces_uv: torch.Tensor, height: int, width: int,
        u_range: tuple[float, float] = (0.0, 1.0),
    ) -> Fragments:
        key = (
            uv.data_ptr(), uv._version, tuple(uv.shape), faces_uv.data_ptr(), faces_uv._version,
            tuple(faces_uv.shape), height, width, tuple(float(u) for u in u_range), str(uv.device),
        )
        hit = self._entries.get(key)
        if hit is None:
            frags = rasterize_uv(uv, faces_uv, height, width, u_range)
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            # Holding the tensors keeps their memory (and so the data_ptr key) from being reused.
            hit = (frags, uv, faces_uv)
            self._entries[key] = hit
        return hit[0]

    def clear(self) -> None:
        self._entries.clear()


def position_map(verts: torch.Tensor, faces: torch.Tensor, uv_frags: Fragments) -> torch.Tensor:
    """UV position map: verts (B,V,3) (any frame, e.g. model mm) interpolated at each texel.
    Returns (B,Ht,Wt,3), zero on texels no triangle covers."""
    return interpolate(verts, uv_frags.face_idx, uv_frags.bary, faces)


def normal_map(verts: torch.Tensor, faces: torch.Tensor, uv_frags: Fragments) -> torch.Tensor:
    """UV normal map: unit vertex normals of verts (B,V,3) interpolated and renormalised per
    texel, in the frame of ``verts``. Returns (B,Ht,Wt,3), zero on uncovered texels."""
    n = interpolate(vertex_normals(verts, faces), uv_frags.face_idx, uv_frags.bary, faces)
    return Fn.normalize(n, dim=-1, eps=1e-12)


@dataclass(frozen=True)
class UnwrapSettings:
    """Options of :func:`unwrap_image`.

    - ``depth_tolerance_mm``: a texel is visible when its depth is at most this much behind
      the depth buffer at its pixel (nearest pixel centre). Converted to screen units with
      the pose's scale for orthographic cameras.
    - ``min_cosine``: texels whose normal makes a cosine ≤ this with the view direction are
      back-facing/grazing and not visible.
    """

    depth_tolerance_mm: float = 3.0
    min_cosine: float = 0.0


@dataclass(frozen=True)
class Unwrapped:
    """A photo unwrapped into UV space (B batch, Ht×Wt texels).

    - ``texture``: (B,Ht,Wt,3) image colour bilinearly sampled at each texel's projection
      (zero where not ``visible``).
    - ``visible``: (B,Ht,Wt) bool: texel on the mesh, projecting inside the image, front-most
      at its pixel and facing the camera.
    - ``cosine``: (B,Ht,Wt) cosine between the texel normal and the direction to the camera
      (0 on texels off the mesh): a blending weight for several views.
    - ``screen``: (B,Ht,Wt,3) projected texel position (x, y pixels; z screen depth).
    """

    texture: torch.Tensor
    visible: torch.Tensor
    cosine: torch.Tensor
    screen: torch.Tensor


def unwrap_image(
    image: torch.Tensor,
    verts: torch.Tensor,
    faces: torch.Tensor,
    pose: torch.Tensor,
    camera: Camera,
    uv_frags: Fragments,
    *,
    fragments: Fragments | None = None,
    settings: UnwrapSettings | None = None,
) -> Unwrapped:
    """Unwrap photos into the UV layout rasterised in ``uv_frags``.

    image: (B,H,W,3) float, H×W = ``camera``'s size. verts: (B,V,3) model space mm; faces
    (F,3); pose (B,7). ``fragments``: the screen rasterisation of the same mesh and pose
    (computed here when None). Returns :class:`Unwrapped`; the texture is differentiable
    w.r.t. the image and the vertices (through the sample positions).
    """
    settings = settings or UnwrapSettings()
    B, H, W = image.shape[0], image.shape[1], image.shape[2]
    if image.dim() != 4 or (H, W) != (camera.height, camera.width):
        raise ValueError(
            f"image must be (B,{camera.height},{camera.width},C) to match the camera, got {tuple(image.shape)}"
        )
    screen_v = project(verts, pose, camera)
    persp = camera.projection == "perspective"
    if fragments is None:
        rs = RasterSettings(perspective_correct=persp, z_near=1.0 if persp else None)
        fragments = rasterize(screen_v, faces, H, W, rs)
    valid = uv_frags.face_idx >= 0  # (1,Ht,Wt)
    p = interpolate(screen_v, uv_frags.face_idx, uv_frags.bary, faces)  # (B,Ht,Wt,3)
    if persp:
        # Screen x/y are not affine in the surface: project the interpolated 3-D point instead.
        cam_v = to_camera_space(verts, pose, camera.projection)
        pc = interpolate(cam_v, uv_frags.face_idx, uv_frags.bary, faces)
        depth = (-pc[..., 2]).clamp_min(1e-6)
        cx, cy = camera.center
        f = pose[:, 0].view(B, 1, 1)
        p = torch.stack([cx + f * pc[..., 0] / depth, cy - f * pc[..., 1] / depth, depth], -1)
        view = Fn.normalize(-pc, dim=-1)
    else:
        cam_v = to_camera_space(verts, pose, camera.projection)
        view = None
    n_tex = Fn.normalize(interpolate(vertex_normals(cam_v, faces), uv_frags.face_idx, uv_frags.bary, faces), dim=-1)
    cosine = n_tex[..., 2] if view is None else (n_tex * view).sum(-1)
    cosine = cosine * valid.to(cosine.dtype)

    # Bilinear colour at the projected position (pixel centres at integers, align_corners=False).
    grid = torch.stack([(p[..., 0] + 0.5) * (2.0 / W) - 1.0, (p[..., 1] + 0.5) * (2.0 / H) - 1.0], -1)
    colour = grid_sample_bilinear(
        image.permute(0, 3, 1, 2).to(p.dtype), grid, padding_mode="border", align_corners=False
    ).permute(0, 2, 3, 1)

    # Depth test against the nearest pixel of the depth buffer.
    with torch.no_grad():
        ix = p[..., 0].round().long()
        iy = p[..., 1].round().long()
        inside = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
        flat = (torch.arange(B, device=ix.device).view(B, 1, 1) * H + iy.clamp(0, H - 1)) * W + ix.clamp(0, W - 1)
        buf_depth = fragments.depth.reshape(-1)[flat]
        buf_cover = fragments.face_idx.reshape(-1)[flat] >= 0
        tol = settings.depth_tolerance_mm * (1.0 if persp else pose[:, 0].abs().view(B, 1, 1))
        front = p[..., 2].detach() - buf_depth <= tol
        visible = valid & inside & buf_cover & front & (cosine.detach() > settings.min_cosine)
    texture = colour * visible[..., None].to(colour.dtype)
    return Unwrapped(texture=texture, visible=visible, cosine=cosine, screen=p)
