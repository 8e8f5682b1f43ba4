"""A synthetic multi-view scene with known answers (tests, benchmarks, demos): one random face of
the model rendered from several yaws under different lights, with its true albedo, exposure gains
and optional wrinkle displacement.

Letters: V views, S×S rendered photo pixels, N mesh vertices.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as Fn

from backend.camera import Camera
from backend.detail import displaced_mesh
from backend.facemodel import FaceModel
from backend.lighting import sh_directional
from backend.render import Fragments, RenderSettings, rasterize_uv, render

__all__ = ["SyntheticViews", "synthetic_views", "synthetic_uv_frags", "skin_texture"]


def skin_texture(height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """A skin-like albedo (H,W,3) in [0,1]: a base skin tone with blotchy low-frequency
    brightness (±7 %) and redness, mid-frequency mottling, brown freckles and fine pore noise.
    Deterministic for a given generator state."""

    def octave(cells_h: int, cells_w: int, channels: int) -> torch.Tensor:
        n = torch.randn(1, channels, cells_h, cells_w, generator=generator)
        return Fn.interpolate(n, size=(height, width), mode="bicubic", align_corners=False)[0].permute(1, 2, 0)

    base = torch.tensor([0.72, 0.52, 0.44])
    tone = 1.0 + 0.07 * octave(4, 8, 1) + 0.04 * octave(16, 32, 1)  # brightness, large blotches
    redness = 0.05 * octave(8, 16, 1).clamp_min(0.0) * torch.tensor([1.0, -0.5, -0.3])  # flushed areas
    mottle = 0.025 * octave(max(2, height // 8), max(2, width // 8), 1) * torch.tensor([1.0, 0.8, 0.7])
    spots = (octave(max(2, height // 3), max(2, width // 3), 1) > 2.0).float()
    freckles = 1.0 - 0.3 * spots * torch.tensor([0.7, 0.9, 1.0])  # brown: blue and green drop most
    pores = 0.012 * torch.randn(height, width, 1, generator=generator)
    return ((base * tone + redness + mottle + pores) * freckles).clamp(0.0, 1.0)


@dataclass(frozen=True)
class SyntheticViews:
    """A rendered multi-view scene with its ground truth (all torch, CPU, float32).

    - ``images`` (V,S,S,3) rendered photos (orthographic, background 0), ``masks`` (V,S,S) bool;
    - ``verts`` (1,N,3) mm ground-truth shape, ``faces`` (F,3), ``uv`` (T,2), ``faces_uv`` (F,3);
    - ``poses`` (V,7), ``sh`` (V,27), ``camera``;
    - ``albedo`` (Ht, Ht·tiles, 3) ground-truth UV albedo over ``u_range`` = (0, tiles);
    - ``gains`` (V,3) per-view exposure/white-balance factors applied on top of the SH light
      (what SH delighting with the true light cannot remove; :func:`backend.blend.equalize_views`
      should).
    - ``displacement`` (Ht,Ht) mm along the coarse normal over the face tile, or None. With
      it, the mesh above is the *rendered* one: the displaced dense face tile (one vertex per
      valid texel, :mod:`backend.detail`) followed by the coarse head-tile triangles, with
      matching ``uv``/``faces_uv``; ``coarse_verts`` (1,N,3) is the model mesh either way.
    """

    images: torch.Tensor
    masks: torch.Tensor
    verts: torch.Tensor
    faces: torch.Tensor
    uv: torch.Tensor
    faces_uv: torch.Tensor
    poses: torch.Tensor
    sh: torch.Tensor
    camera: Camera
    albedo: torch.Tensor
    gains: torch.Tensor
    u_range: tuple[float, float]
    coarse_verts: torch.Tensor
    displacement: torch.Tensor | None = None


def synthetic_views(
    model: FaceModel,
    yaws_deg: tuple[float, ...] = (-60.0, 0.0, 60.0),
    size: int = 224,
    tex_res: int = 256,
    seed: int = 0,
    noise: float = 0.01,
    gain_spread: float = 0.08,
    detail_mm: float = 0.0,
) -> SyntheticViews:
    """Render one random face of ``model`` from several yaw angles under different SH lights.

    Random identity (σ 0.7) and a light expression, the :func:`skin_texture` albedo over all
    UV tiles (``tex_res`` texels per tile), orthographic camera ``size``², the head about 60 %
    of the image height. View v: yaw ``yaws_deg[v]`` (ry of :mod:`backend.camera`: positive turns the
    face towards the image's right, showing the subject's right cheek), a directional light from a
    different side with ambient term, an RGB gain around 1 (± ``gain_spread``) and Gaussian
    pixel noise σ ``noise``. ``detail_mm`` > 0 adds a wrinkle-like UV displacement of that
    amplitude (mm) to the face tile, rendered as a dense displaced mesh (see
    :class:`SyntheticViews`). Deterministic for a seed.
    """
    gen = torch.Generator().manual_seed(seed)
    V = len(yaws_deg)
    with torch.no_grad():
        coeffs = model.sample(1, generator=gen, id_scale=0.7, exp_scale=0.15)
        verts = coeffs["verts"].float().cpu()
        tiles = model.uv_tiles
        albedo = skin_texture(tex_res, tex_res * tiles, gen)
        cam = Camera(size, size)
        poses = torch.zeros(V, 7)
        poses[:, 0] = 0.6 * size / 230.0  # ~230 mm chin-to-crown at 60 % of the image
        poses[:, 2] = torch.tensor([math.radians(y) for y in yaws_deg])
        poses[:, 5] = 0.12 * size  # raise the head so the face sits near the centre
        angles = torch.linspace(-0.9, 0.9, V).tolist()  # light azimuths, shuffled over the views
        dirs = torch.stack([torch.tensor([math.sin(a), 0.4, math.cos(a)]) for a in angles])
        dirs = dirs[torch.randperm(V, generator=gen)]
        sh = sh_directional(dirs, 0.75, 0.45)
        gains = 1.0 + gain_spread * (2.0 * torch.rand(V, 3, generator=gen) - 1.0)
        settings = RenderSettings(u_range=(0.0, float(tiles)))
        mesh = (verts, model.faces.cpu(), model.uv.cpu(), model.faces_uv.cpu())
        disp = None
        if detail_mm > 0:
            disp = _wrinkles(tex_res, gen) * detail_mm
            mesh = displaced_mesh(model, verts, disp)
        out = render(
            mesh[0].expand(V, -1, -1), mesh[1], poses, cam, sh, texture=albedo, uv=mesh[2], faces_uv=mesh[3],
            settings=settings,
        )
        images = out.image * gains.view(V, 1, 1, 3) + noise * torch.randn(out.image.shape, generator=gen)
        images = images.clamp(0.0, 1.0) * out.alpha[..., None]
    return SyntheticViews(
        images=images, masks=out.mask, verts=mesh[0], faces=mesh[1], uv=mesh[2], faces_uv=mesh[3], poses=poses,
        sh=sh, camera=cam, albedo=albedo, gains=gains, u_range=(0.0, float(tiles)), coarse_verts=verts,
        displacement=disp,
    )


def _wrinkles(size: int, generator: torch.Generator) -> torch.Tensor:
    """(S,S) wrinkle-like pattern in [−1,1]: thin horizontal creases (forehead-like) whose
    depth varies smoothly, plus fine bumps."""
    rows = torch.arange(size, dtype=torch.float32)[:, None]
    wobble = Fn.interpolate(torch.randn(1, 1, 4, 4, generator=generator), size=(size, size), mode="bicubic",
                            align_corners=False)[0, 0]
    creases = torch.sin(math.pi * (rows / (size / 14.0) + 0.3 * wobble)) ** 4
    depth = Fn.interpolate(torch.rand(1, 1, 6, 6, generator=generator), size=(size, size), mode="bicubic",
                           align_corners=False)[0, 0].clamp(0, 1)
    bumps = Fn.avg_pool2d(torch.randn(1, 1, size, size, generator=generator), 3, 1, 1)[0, 0]
    return (-creases * depth + 0.3 * bumps).clamp(-1.0, 1.0)


def synthetic_uv_frags(scene: SyntheticViews, tex_res: int) -> Fragments:
    """UV rasterisation of the synthetic scene's mesh at ``tex_res`` texels per tile."""
    tiles = int(round(scene.u_range[1] - scene.u_range[0]))
    return rasterize_uv(scene.uv, scene.faces_uv, tex_res, tex_res * tiles, scene.u_range)
